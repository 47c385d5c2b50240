/*
 * generate.c - `crucible generate MODEL --prompt TEXT [-n N] [--temp T]
 * [--seed S] [--ctx N] [--json] [--dump-logits FILE.npy]`: text generation
 * with the reference interpreter, one token per run of the model's
 * decode-step graph. See docs/cli/generate.md.
 *
 * The graph (e.g. the gguf frontend's llama template) must have the
 * inputs `token` (i32[1]) and `pos` (i32[1]), the output `logits`
 * (f32[1, n_vocab]), and for every other input X an output `X.next` of the
 * same dtype and shape: the state (the KV caches) after the step, fed
 * back in as X on the next step. The state starts as zeros.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "interp.h"
#include "tensorio.h"

int cmd_generate(cli *c, int argc, char **argv);

static const char *const GENERATE_HELP =
    "usage: crucible generate MODEL --prompt TEXT [-n N] [--temp T] "
    "[--seed S]\n"
    "                         [--ctx N] [--json] [--dump-logits FILE.npy]\n"
    "\n"
    "Generates text with the reference interpreter: encodes TEXT with the\n"
    "model's own vocabulary (BOS first), runs the model's decode-step graph\n"
    "once per prompt token and then once per generated token, and prints "
    "the text.\n"
    "\n"
    "  --prompt TEXT    the prompt (default: empty, i.e. BOS only)\n"
    "  -n N             tokens to generate (default 64); stops early at EOS\n"
    "  --temp T         0 (default): greedy, the highest logit (lowest id on\n"
    "                   ties); T > 0: sample from softmax(logits / T)\n"
    "  --seed S         seed of the sampling PRNG (default 0)\n"
    "  --ctx N          KV-cache positions (default: min(trained context, "
    "256))\n"
    "  --json           print ids, per-step top logits, text and timings as "
    "JSON\n"
    "  --dump-logits F  write every generated step's logits to F as an .npy\n"
    "                   f32 [steps, n_vocab] array\n"
    "\n"
    "Exit status: 0 on success, 1 when the model or its vocabulary cannot\n"
    "be used, 2 for usage errors.\n";

/* ---- the tokenizer ----------------------------------------------------------*/
typedef struct gen_tok {
    cr_plugin *p;
    void *tok;
} gen_tok;

static int open_tokenizer(cli *c, const char *model, gen_tok *t)
{
    cr_plugin *failed = NULL;
    int frc = 0;
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < c->loader.n && !t->p && !failed; i++) {
        cr_plugin *p = c->loader.plugins[i];
        if (p->status != CR_PLUGIN_LOADED || !p->has_tokenizer) continue;
        cr_loader_enter(p, "tokenizer.open");
        int rc = p->tokenizer.open(p->state, model, &t->tok);
        cr_loader_leave();
        if (rc == CRUCIBLE_OK && t->tok) t->p = p;
        else if (rc != CRUCIBLE_E_NOTFOUND) {
            failed = p;
            frc = rc == CRUCIBLE_OK ? CRUCIBLE_E_GENERIC : rc;
        }
    }
    if (t->p) return 0;
    if (failed)
        fprintf(stderr, "crucible generate: %s could not read the vocabulary "
                        "of %s: %s\n",
                failed->id, model, crucible_status_str(frc));
    else
        fprintf(stderr, "crucible generate: no loaded tokenizer reads %s (the "
                        "model file has no vocabulary)\n",
                model);
    return -1;
}

/* The bytes of token id's piece into a growable buffer. */
static int piece(gen_tok *t, int32_t id, jbuf *out)
{
    char small[256], *buf = small;
    size_t len = 0;
    cr_loader_enter(t->p, "tokenizer.piece");
    int rc = t->p->tokenizer.piece(t->tok, id, buf, sizeof small, &len);
    if (rc == CRUCIBLE_E_LIMIT && len > sizeof small) {
        buf = cr_malloc(len);
        if (!buf) die_oom();
        rc = t->p->tokenizer.piece(t->tok, id, buf, len, &len);
    }
    cr_loader_leave();
    if (rc == CRUCIBLE_OK) jb_putn(out, buf, len);
    if (buf != small) cr_free(buf);
    return rc;
}

/* ---- the PRNG and the samplers (docs/cli/generate.md) -----------------------*/
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Highest logit; the lowest id among equals. NaN never wins. */
static int32_t argmax(const float *l, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best] || (l[best] != l[best] && l[i] == l[i])) best = i;
    return best;
}

/* Draws from softmax(l / temp): weights exp((l[i] - max) / temp) in
 * double, u uniform in [0, 1) from the top 53 bits of the PRNG, the first
 * id whose running weight sum exceeds u * total. */
static int32_t sample(const float *l, int32_t n, double temp, uint64_t *rng,
                      double *w)
{
    int32_t top = argmax(l, n);
    double m = (double)l[top], total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        w[i] = l[i] == l[i] ? exp(((double)l[i] - m) / temp) : 0.0;
        total += w[i];
    }
    double u = (double)(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0);
    double r = u * total, acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += w[i];
        if (acc > r) return i;
    }
    return top;
}

/* ---- helpers ----------------------------------------------------------------------*/
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Text as a JSON string: invalid UTF-8 bytes become U+FFFD, NUL is
 * dropped. */
static void json_text(jbuf *j, const char *s, size_t n)
{
    jbuf clean;
    jb_init(&clean);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        size_t l = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2
                 : (ch & 0xf0) == 0xe0 ? 3 : (ch & 0xf8) == 0xf0 ? 4 : 0;
        int ok = l && i + l <= n && !(l == 2 && ch < 0xc2) &&
                 !(l == 4 && ch > 0xf4);
        for (size_t k = 1; ok && k < l; k++)
            ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
        if (!ok) {
            jb_puts(&clean, "\xef\xbf\xbd");
            i++;
        } else {
            if (ch) jb_putn(&clean, s + i, l);
            i += l;
        }
    }
    jb_jstr(j, clean.s ? clean.s : "");
    jb_free(&clean);
}

/* The first non-empty piece of the text (appended at `before`) loses a
 * leading space: the SentencePiece space prefix. Returns the new
 * "first piece still to come" flag. */
static int strip_first_space(jbuf *text, size_t before, int first)
{
    if (!first || text->len <= before) return first;
    if (text->s[before] == ' ') {
        /* the bytes after the space and the terminating NUL */
        memmove(text->s + before, text->s + before + 1, text->len - before);
        text->len--;
    }
    return 0;
}

static int32_t find_output(const cr_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (!strcmp(g->tensors[g->outputs[i]].name, name)) return (int32_t)i;
    return -1;
}

static int same_shape(const cr_tensor *a, const cr_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i] || a->dims[i] <= 0) return 0;
    return 1;
}

/* The decode-step contract; fills next[i] (the output feeding input i, -1
 * for token / pos) and the indices of token, pos, logits. */
static int check_graph(const cr_graph *g, const char *model, int32_t *next,
                       int32_t *i_tok, int32_t *i_pos, int32_t *o_logits)
{
    *i_tok = *i_pos = -1;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const cr_tensor *t = &g->tensors[g->inputs[i]];
        next[i] = -1;
        if (!strcmp(t->name, "token") || !strcmp(t->name, "pos")) {
            if (t->dtype != CRUCIBLE_DT_I32 || t->rank != 1 || t->dims[0] != 1) {
                fprintf(stderr, "crucible generate: %s: input %s must be "
                                "i32[1]\n",
                        model, t->name);
                return -1;
            }
            *(t->name[0] == 't' ? i_tok : i_pos) = (int32_t)i;
            continue;
        }
        char want[4200];
        snprintf(want, sizeof want, "%s.next", t->name);
        int32_t o = find_output(g, want);
        if (o < 0 || !same_shape(t, &g->tensors[g->outputs[o]]) ||
            !interp_elem_size(t->dtype)) {
            fprintf(stderr, "crucible generate: %s: state input %s needs an "
                            "output %s of the same dtype and known shape\n",
                    model, t->name, want);
            return -1;
        }
        next[i] = o;
    }
    *o_logits = find_output(g, "logits");
    if (*i_tok < 0 || *i_pos < 0 || *o_logits < 0) {
        fprintf(stderr, "crucible generate: %s is not a decode-step graph: it "
                        "needs inputs token and pos (i32[1]) and an output "
                        "logits\n",
                model);
        return -1;
    }
    const cr_tensor *lt = &g->tensors[g->outputs[*o_logits]];
    if (lt->dtype != CRUCIBLE_DT_F32 || lt->rank != 2 || lt->dims[0] != 1 ||
        lt->dims[1] < 1 || lt->dims[1] > INT32_MAX) {
        fprintf(stderr, "crucible generate: %s: output logits must be "
                        "f32[1, n_vocab]\n",
                model);
        return -1;
    }
    return 0;
}

/* ---- the command ------------------------------------------------------------------*/
int cmd_generate(cli *c, int argc, char **argv)
{
    const char *model = NULL, *prompt = "", *dump = NULL, *ctx = NULL;
    long long n_gen = 64;
    double temp = 0.0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (is_help(a)) {
            fputs(GENERATE_HELP, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) c->json = 1;
        else if (!strcmp(a, "--prompt") && i + 1 < argc) prompt = argv[++i];
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && i + 1 < argc) {
            n_gen = strtoll(argv[++i], &end, 10);
            if (*end || !argv[i][0] || n_gen < 0 || n_gen > 1000000)
                return usage_error("generate", "-n needs 0..1000000");
        } else if (!strcmp(a, "--temp") && i + 1 < argc) {
            temp = strtod(argv[++i], &end);
            if (*end || !argv[i][0] || !(temp >= 0.0) || temp > 1e6)
                return usage_error("generate", "--temp needs a number >= 0");
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !argv[i][0] || argv[i][0] == '-')
                return usage_error("generate", "--seed needs a non-negative "
                                               "integer");
        } else if (!strcmp(a, "--ctx") && i + 1 < argc) {
            ctx = argv[++i];
            long long v = strtoll(ctx, &end, 10);
            if (*end || !ctx[0] || v < 1 || v > (1ll << 31))
                return usage_error("generate", "--ctx needs 1..2^31");
        } else if (!strcmp(a, "--dump-logits") && i + 1 < argc) {
            dump = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage_error("generate", "unknown option %s (or a missing "
                                           "value)", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("generate", "unexpected argument %s", a);
        }
    }
    if (!model) return usage_error("generate", "missing MODEL");
    if (!cr_is_file(model)) {
        fprintf(stderr, "crucible generate: %s: %s\n", model,
                cr_is_dir(model) ? "is a directory, not a model file"
                                 : "no such file");
        return 1;
    }
    if (cli_load_plugins(c)) return 1;
    gen_tok tk;
    if (open_tokenizer(c, model, &tk)) return 1;

    int rc = 1;
    cr_graph *g = NULL;
    int32_t *ids = NULL, *next = NULL, *gen = NULL;
    float *top = NULL, *dumped = NULL;
    double *w = NULL;
    cr_array *in = NULL, *out = NULL;
    jbuf text;
    jb_init(&text);
    size_t n_prompt = 0, cap = 256, n_out = 0;

    /* the prompt */
    ids = cr_malloc(cap * sizeof *ids);
    if (!ids) die_oom();
    cr_loader_enter(tk.p, "tokenizer.encode");
    int st = tk.p->tokenizer.encode(tk.tok, prompt, strlen(prompt), 1, ids,
                                    cap, &n_prompt);
    if (st == CRUCIBLE_E_LIMIT && n_prompt > cap) {
        cr_free(ids);
        cap = n_prompt;
        ids = cr_malloc(cap * sizeof *ids);
        if (!ids) die_oom();
        st = tk.p->tokenizer.encode(tk.tok, prompt, strlen(prompt), 1, ids,
                                    cap, &n_prompt);
    }
    cr_loader_leave();
    if (st != CRUCIBLE_OK) {
        fprintf(stderr, "crucible generate: %s could not encode the prompt: "
                        "%s\n",
                tk.p->id, crucible_status_str(st));
        goto out;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "crucible generate: the prompt encodes to no tokens "
                        "and the vocabulary has no BOS; give a --prompt\n");
        goto out;
    }
    cr_loader_enter(tk.p, "tokenizer.eos");
    const int32_t eos = tk.p->tokenizer.eos(tk.tok);
    cr_loader_leave();

    /* the model */
    if (ctx) setenv("CRUCIBLE_GGUF_CTX", ctx, 1);
    int lst;
    g = cli_load_model_st(c, model, NULL, NULL, &lst);
    if (!g) goto out;
    jbuf uh;
    jb_init(&uh);
    size_t nu = cli_unsupported(g, &uh, NULL);
    if (nu) {
        fputs(uh.s, stderr);
        fprintf(stderr, "crucible generate: %s cannot run: %zu node%s the "
                        "reference interpreter cannot execute\n",
                model, nu, nu == 1 ? "" : "s");
        jb_free(&uh);
        goto out;
    }
    jb_free(&uh);
    int32_t i_tok, i_pos, o_logits;
    next = cr_calloc(g->n_inputs ? g->n_inputs : 1, sizeof *next);
    if (!next) die_oom();
    if (check_graph(g, model, next, &i_tok, &i_pos, &o_logits)) goto out;
    const int32_t n_vocab = (int32_t)g->tensors[g->outputs[o_logits]].dims[1];
    int64_t n_ctx = INT64_MAX;
    in = cr_calloc(g->n_inputs, sizeof *in);
    out = cr_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *out);
    if (!in || !out) die_oom();
    for (size_t i = 0; i < g->n_inputs; i++) {
        const cr_tensor *t = &g->tensors[g->inputs[i]];
        in[i].dtype = t->dtype;
        in[i].rank = t->rank;
        memcpy(in[i].dims, t->dims, sizeof in[i].dims);
        uint64_t ne = ir_numel(t);
        in[i].bytes = (size_t)ne * interp_elem_size(t->dtype);
        in[i].data = cr_calloc(in[i].bytes ? in[i].bytes : 1, 1);
        if (!in[i].data) {
            fprintf(stderr, "crucible generate: out of memory for the state "
                            "%s (%zu bytes)\n",
                    t->name, in[i].bytes);
            goto out;
        }
        if (next[i] >= 0 && t->rank >= 1 && t->dims[0] < n_ctx)
            n_ctx = t->dims[0]; /* the cache's positions */
    }
    if ((int64_t)n_prompt > n_ctx) {
        fprintf(stderr, "crucible generate: the prompt has %zu tokens but the "
                        "context holds %lld (use --ctx)\n",
                n_prompt, (long long)n_ctx);
        goto out;
    }
    gen = cr_malloc(((size_t)n_gen + 1) * sizeof *gen);
    top = cr_malloc(((size_t)n_gen + 1) * sizeof *top);
    w = cr_malloc((size_t)n_vocab * sizeof *w);
    if (!gen || !top || !w) die_oom();
    if (dump && n_gen) {
        dumped = cr_malloc((size_t)n_gen * (size_t)n_vocab * sizeof *dumped);
        if (!dumped) die_oom();
    }

    /* the prompt text: leading space of the first piece dropped (the
     * SentencePiece space prefix), as llama.cpp and SentencePiece do */
    int first_piece = 1;
    for (size_t i = 0; i < n_prompt; i++) {
        size_t before = text.len;
        piece(&tk, ids[i], &text);
        first_piece = strip_first_space(&text, before, first_piece);
    }
    if (!c->json && text.len) {
        fwrite(text.s, 1, text.len, stdout);
        fflush(stdout);
    }

    uint64_t rng = seed;
    const char *stop = "length";
    double t0 = now_ms(), t_prompt = 0.0;
    char err[1024];
    int32_t cur = ids[0];
    for (int64_t p = 0;; p++) {
        /* feed token cur at position p */
        ((int32_t *)in[i_tok].data)[0] = cur;
        ((int32_t *)in[i_pos].data)[0] = (int32_t)p;
        if (interp_run(g, in, g->n_inputs, out, err, sizeof err)) {
            fprintf(stderr, "crucible generate: step at position %lld: %s\n",
                    (long long)p, err);
            goto out;
        }
        for (size_t i = 0; i < g->n_inputs; i++) {
            if (next[i] < 0) continue;
            tio_free(&in[i]);
            in[i] = out[next[i]];
            memset(&out[next[i]], 0, sizeof out[next[i]]);
        }
        const float *lg = (const float *)out[o_logits].data;
        int done = 0;
        if ((size_t)(p + 1) < n_prompt) {
            cur = ids[p + 1];
        } else {
            if (t_prompt == 0.0) t_prompt = now_ms() - t0;
            if ((long long)n_out >= n_gen) {
                done = 1;
            } else {
                int32_t tb = argmax(lg, n_vocab);
                cur = temp > 0.0 ? sample(lg, n_vocab, temp, &rng, w) : tb;
                gen[n_out] = cur;
                top[n_out] = lg[tb];
                if (dumped)
                    memcpy(dumped + n_out * (size_t)n_vocab, lg,
                           (size_t)n_vocab * sizeof *lg);
                n_out++;
                if (cur == eos) {
                    stop = "eos";
                    done = 1;
                } else {
                    size_t before = text.len;
                    piece(&tk, cur, &text);
                    first_piece = strip_first_space(&text, before, first_piece);
                    if (!c->json && text.len > before) {
                        fwrite(text.s + before, 1, text.len - before, stdout);
                        fflush(stdout);
                    }
                    if ((long long)n_out >= n_gen) done = 1;
                    else if (p + 1 >= n_ctx) {
                        stop = "context";
                        done = 1;
                    }
                }
            }
        }
        for (size_t i = 0; i < g->n_outputs; i++) tio_free(&out[i]);
        if (done) break;
    }
    double t_all = now_ms() - t0, t_gen = t_all - t_prompt;
    /* generated tokens each cost a step except the last one chosen */
    double per_tok = n_out > 1 ? t_gen / (double)(n_out - 1) : 0.0;

    if (dump && n_out) {
        cr_array d;
        memset(&d, 0, sizeof d);
        d.dtype = CRUCIBLE_DT_F32;
        d.rank = 2;
        d.dims[0] = (int64_t)n_out;
        d.dims[1] = n_vocab;
        d.data = dumped;
        d.bytes = n_out * (size_t)n_vocab * sizeof *dumped;
        if (tio_save(dump, &d, err, sizeof err)) {
            fprintf(stderr, "crucible generate: %s\n", err);
            goto out;
        }
    }
    if (c->json) {
        jbuf j;
        jb_init(&j);
        jb_puts(&j, "{\"model\":");
        jb_jstr(&j, model);
        jb_printf(&j, ",\"n_ctx\":%lld,\"n_vocab\":%d,\"temp\":",
                  (long long)n_ctx, (int)n_vocab);
        jb_jnum(&j, temp);
        jb_printf(&j, ",\"seed\":%llu,\"prompt_ids\":[", (unsigned long long)seed);
        for (size_t i = 0; i < n_prompt; i++)
            jb_printf(&j, "%s%d", i ? "," : "", (int)ids[i]);
        jb_puts(&j, "],\"ids\":[");
        for (size_t i = 0; i < n_out; i++)
            jb_printf(&j, "%s%d", i ? "," : "", (int)gen[i]);
        jb_puts(&j, "],\"top_logits\":[");
        for (size_t i = 0; i < n_out; i++) {
            if (i) jb_putc(&j, ',');
            jb_printf(&j, "%.9g", (double)top[i]);
        }
        jb_puts(&j, "],\"stop\":");
        jb_jstr(&j, stop);
        jb_puts(&j, ",\"text\":");
        json_text(&j, text.s ? text.s : "", text.len);
        jb_printf(&j, ",\"prompt_ms\":%.3f,\"generate_ms\":%.3f,"
                      "\"ms_per_token\":%.3f}\n",
                  t_prompt, t_gen, per_tok);
        if (j.err) die_oom();
        fputs(j.s, stdout);
        jb_free(&j);
    } else {
        putchar('\n');
    }
    fflush(stdout);
    if (c->verbosity >= 0)
        fprintf(stderr, "[crucible] generate: %zu prompt token%s in %.1f ms, "
                        "%zu token%s generated in %.1f ms (%.2f ms/token), "
                        "stop: %s, context %lld\n",
                n_prompt, n_prompt == 1 ? "" : "s", t_prompt, n_out,
                n_out == 1 ? "" : "s", t_gen, per_tok, stop, (long long)n_ctx);
    rc = 0;
out:
    if (in)
        for (size_t i = 0; i < g->n_inputs; i++) tio_free(&in[i]);
    if (out)
        for (size_t i = 0; i < g->n_outputs; i++) tio_free(&out[i]);
    cr_free(in);
    cr_free(out);
    cr_free(next);
    cr_free(gen);
    cr_free(top);
    cr_free(w);
    cr_free(dumped);
    cr_free(ids);
    jb_free(&text);
    if (g) ir_free(g);
    cr_loader_enter(tk.p, "tokenizer.close");
    tk.p->tokenizer.close(tk.tok);
    cr_loader_leave();
    return rc;
}
