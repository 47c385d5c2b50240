/*
 * tokenize.c - `crucible tokenize MODEL TEXT [--no-bos] [--json]`: text to
 * token ids with the vocabulary carried by the model file, through the
 * first loaded tokenizer plugin (crucible.tokenizer/1) whose open()
 * accepts the file. See docs/cli/tokenize.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(cli *c, int argc, char **argv);

static const char *const TOKENIZE_HELP =
    "usage: crucible tokenize MODEL TEXT [--no-bos] [--json]\n"
    "\n"
    "Encodes TEXT (UTF-8; '-' reads standard input) with the vocabulary in\n"
    "MODEL (e.g. a GGUF file's tokenizer.ggml.* metadata) and prints the "
    "token ids\non one line, separated by spaces. The first loaded tokenizer "
    "plugin that\nreads the file is used.\n"
    "\n"
    "  --no-bos   do not add the beginning-of-sequence token (nor any other\n"
    "             special token the vocabulary asks for)\n"
    "  --json     print {\"ids\":[...],\"pieces\":[...]}; a piece that is not\n"
    "             valid UTF-8 on its own (a byte token) is written <0xNN>\n"
    "  --         end of options (for a TEXT that starts with '-')\n"
    "\n"
    "Exit status: 0 on success, 1 when the model has no readable vocabulary,\n"
    "2 for usage errors.\n";

/* Reads all of stdin; NULL on failure. */
static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = cr_malloc(cap);
    if (!b) die_oom();
    for (;;) {
        if (n == cap) {
            if (cap > ((size_t)1 << 30)) {
                cr_free(b);
                return NULL;
            }
            char *nb = cr_realloc(b, cap * 2);
            if (!nb) die_oom();
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) {
        cr_free(b);
        return NULL;
    }
    *len = n;
    return b;
}

/* A piece as a JSON string: valid UTF-8 as is (escaped per JSON), every
 * byte that is not part of a valid sequence as the text <0xNN>. */
static void json_piece(jbuf *j, const unsigned char *s, size_t n)
{
    jb_putc(j, '"');
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        size_t l = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2
                 : (ch & 0xf0) == 0xe0 ? 3 : (ch & 0xf8) == 0xf0 ? 4 : 0;
        int ok = l && i + l <= n && !(l == 2 && ch < 0xc2) &&
                 !(l == 4 && ch > 0xf4);
        for (size_t k = 1; ok && k < l; k++) ok = (s[i + k] & 0xc0) == 0x80;
        if (!ok) {
            jb_printf(j, "<0x%02X>", ch);
            i++;
        } else if (l > 1) {
            jb_putn(j, (const char *)s + i, l);
            i += l;
        } else if (ch == '"' || ch == '\\') {
            jb_putc(j, '\\');
            jb_putc(j, (char)ch);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            jb_printf(j, "\\u%04x", ch);
            i++;
        } else {
            jb_putc(j, (char)ch);
            i++;
        }
    }
    jb_putc(j, '"');
}

int cmd_tokenize(cli *c, int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int add_bos = 1, opts = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && is_help(a)) {
            fputs(TOKENIZE_HELP, stdout);
            return 0;
        }
        if (opts && !strcmp(a, "--")) opts = 0;
        else if (opts && !strcmp(a, "--json")) c->json = 1;
        else if (opts && !strcmp(a, "--no-bos")) add_bos = 0;
        else if (opts && a[0] == '-' && a[1])
            return usage_error("tokenize", "unknown option %s", a);
        else if (!model) model = a;
        else if (!text) text = a;
        else return usage_error("tokenize", "unexpected argument %s", a);
    }
    if (!model) return usage_error("tokenize", "missing MODEL");
    if (!text) return usage_error("tokenize", "missing TEXT (use - for "
                                              "standard input)");
    if (!cr_is_file(model)) {
        fprintf(stderr, "crucible tokenize: %s: %s\n", model,
                cr_is_dir(model) ? "is a directory, not a model file"
                                 : "no such file");
        return 1;
    }
    char *owned = NULL;
    size_t len = strlen(text);
    if (!strcmp(text, "-")) {
        owned = read_stdin(&len);
        if (!owned) {
            fprintf(stderr, "crucible tokenize: cannot read standard input\n");
            return 1;
        }
        text = owned;
    }
    if (cli_load_plugins(c)) {
        cr_free(owned);
        return 1;
    }
    /* the first tokenizer plugin whose open() accepts the file */
    cr_plugin *tp = NULL, *failed = NULL;
    void *tok = NULL;
    int frc = 0;
    jbuf names;
    jb_init(&names);
    for (size_t i = 0; i < c->loader.n && !tp && !failed; i++) {
        cr_plugin *p = c->loader.plugins[i];
        if (p->status != CR_PLUGIN_LOADED || !p->has_tokenizer) continue;
        jb_printf(&names, "%s%s", names.len ? ", " : "", p->id);
        cr_loader_enter(p, "tokenizer.open");
        int rc = p->tokenizer.open(p->state, model, &tok);
        cr_loader_leave();
        if (rc == CRUCIBLE_OK && tok) tp = p;
        else if (rc != CRUCIBLE_E_NOTFOUND) {
            failed = p;
            frc = rc == CRUCIBLE_OK ? CRUCIBLE_E_GENERIC : rc;
        }
    }
    if (!tp) {
        if (failed)
            fprintf(stderr, "crucible tokenize: %s could not read the "
                            "vocabulary of %s: %s\n",
                    failed->id, model, crucible_status_str(frc));
        else
            fprintf(stderr,
                    "crucible tokenize: no loaded tokenizer reads %s (the file "
                    "has no vocabulary, or no plugin knows its format; "
                    "tokenizer plugins: %s)\n",
                    model, names.s ? names.s : "none");
        jb_free(&names);
        cr_free(owned);
        return 1;
    }
    jb_free(&names);
    int rc = 1;
    size_t cap = 256, n = 0;
    int32_t *ids = cr_malloc(cap * sizeof *ids);
    if (!ids) die_oom();
    cr_loader_enter(tp, "tokenizer.encode");
    int st = tp->tokenizer.encode(tok, text, len, add_bos, ids, cap, &n);
    if (st == CRUCIBLE_E_LIMIT && n > cap) {
        cr_free(ids);
        cap = n;
        ids = cr_malloc(cap * sizeof *ids);
        if (!ids) die_oom();
        st = tp->tokenizer.encode(tok, text, len, add_bos, ids, cap, &n);
    }
    cr_loader_leave();
    if (st != CRUCIBLE_OK) {
        fprintf(stderr, "crucible tokenize: %s could not encode the text: %s\n",
                tp->id, crucible_status_str(st));
        goto out;
    }
    jbuf o;
    jb_init(&o);
    if (c->json) {
        jb_puts(&o, "{\"ids\":[");
        for (size_t i = 0; i < n; i++)
            jb_printf(&o, "%s%d", i ? "," : "", (int)ids[i]);
        jb_puts(&o, "],\"pieces\":[");
        char small[256];
        for (size_t i = 0; i < n; i++) {
            size_t pl = 0;
            char *buf = small;
            cr_loader_enter(tp, "tokenizer.piece");
            int pr = tp->tokenizer.piece(tok, ids[i], buf, sizeof small, &pl);
            if (pr == CRUCIBLE_E_LIMIT && pl > sizeof small) {
                buf = cr_malloc(pl);
                if (!buf) die_oom();
                pr = tp->tokenizer.piece(tok, ids[i], buf, pl, &pl);
            }
            cr_loader_leave();
            if (i) jb_putc(&o, ',');
            if (pr == CRUCIBLE_OK) json_piece(&o, (const unsigned char *)buf, pl);
            else jb_puts(&o, "null");
            if (buf != small) cr_free(buf);
        }
        jb_puts(&o, "]}\n");
    } else {
        for (size_t i = 0; i < n; i++)
            jb_printf(&o, "%s%d", i ? " " : "", (int)ids[i]);
        jb_putc(&o, '\n');
    }
    if (o.err) die_oom();
    fputs(o.s, stdout);
    jb_free(&o);
    rc = 0;
out:
    cr_loader_enter(tp, "tokenizer.close");
    tp->tokenizer.close(tok);
    cr_loader_leave();
    cr_free(ids);
    cr_free(owned);
    return rc;
}
