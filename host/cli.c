/*
 * cli.c - the `crucible` command line.
 *
 *   crucible [--plugin-dir DIR]... [-v|-q] [--json] COMMAND [ARGS]
 *
 * Exit status: 0 only when everything asked ran and passed; 1 for a failure
 * or a verification that could not run; 2 for usage errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "interp.h"
#include "ir.h"
#include "loader.h"
#include "package.h"
#include "sha256.h"
#include "tensorio.h"

/* ------------------------------------------------------------ options */



void die_oom(void)
{
    fprintf(stderr, "crucible: out of memory\n");
    exit(1);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crucible%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'crucible %s%s--help'.\n", cmd ? cmd : "",
            cmd ? " " : "");
    return 2;
}

int cli_load_plugins(cli *c)
{
    if (c->loaded) return 0;
    char err[1024];
    char **dirs = cr_plugin_search_path(c->plugin_dirs, c->n_plugin_dirs,
                                        c->argv0, err, sizeof err);
    if (!dirs) {
        fprintf(stderr, "crucible: %s\n", err);
        return -1;
    }
    cr_loader_init(&c->loader, c->verbosity);
    cr_loader_load_all(&c->loader, dirs);
    cr_strv_free(dirs);
    c->loaded = 1;
    return 0;
}

/* ------------------------------------------------------ crash handling */

static char g_tmp_pkg[4096];
#define MAX_WORKDIRS 16
static char g_workdirs[MAX_WORKDIRS][4096];

void cli_register_workdir(const char *path, int on)
{
    for (int i = 0; i < MAX_WORKDIRS; i++) {
        if (on && !g_workdirs[i][0]) {
            snprintf(g_workdirs[i], sizeof g_workdirs[i], "%s", path);
            return;
        }
        if (!on && !strcmp(g_workdirs[i], path)) {
            g_workdirs[i][0] = 0;
            return;
        }
    }
}

/* Async-signal-safe removal of the work directories: fork + execve rm. */
static void remove_workdirs(void)
{
    for (int i = 0; i < MAX_WORKDIRS; i++) {
        if (!g_workdirs[i][0]) continue;
        pid_t pid = fork();
        if (pid == 0) {
            char *const args[] = {"rm", "-rf", "--", g_workdirs[i], NULL};
            char *const env[] = {NULL};
            execve("/bin/rm", args, env);
            _exit(127);
        }
        if (pid > 0) {
            int st;
            waitpid(pid, &st, 0);
        }
    }
}

const char *cr_loader_current(const char **slot);

static void put_err(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fatal_signal(int sig)
{
    const char *slot = NULL;
    const char *id = cr_loader_current(&slot);
    if (id) {
        put_err("crucible: plugin ");
        put_err(id);
        put_err(" crashed in ");
        put_err(slot ? slot : "?");
        put_err(" (");
        put_err(sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS"
                : sig == SIGFPE ? "SIGFPE" : sig == SIGILL ? "SIGILL"
                : sig == SIGABRT ? "SIGABRT" : "signal");
        put_err("); no package was written. Report it to the plugin's "
                "vendor or remove the plugin.\n");
    } else {
        put_err("crucible: internal error (fatal signal); no package was "
                "written\n");
    }
    if (g_tmp_pkg[0]) unlink(g_tmp_pkg);
    remove_workdirs();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_set_tmp_package(const char *path)
{
    snprintf(g_tmp_pkg, sizeof g_tmp_pkg, "%s", path ? path : "");
}

static void install_crash_handlers(void)
{
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_fatal_signal);
}

/* ---------------------------------------------------------- model load */

/* Loads a model through the best frontend; validates it. */
cr_graph *cli_load_model(cli *c, const char *path, const char *force_fe,
                         const cr_plugin **used)
{
    return cli_load_model_st(c, path, force_fe, used, NULL);
}

cr_graph *cli_load_model_st(cli *c, const char *path, const char *force_fe,
                            const cr_plugin **used, int *status)
{
    if (status) *status = CRUCIBLE_E_GENERIC;
    char err[1024];
    if (!cr_is_file(path)) {
        fprintf(stderr, "crucible: %s: %s\n", path,
                cr_is_dir(path) ? "is a directory, not a model file"
                                : "no such file");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "crucible: cannot open %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    uint8_t head[4096];
    size_t hn = fread(head, 1, sizeof head, f);
    fclose(f);
    cr_plugin *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < c->loader.n; i++) {
        cr_plugin *p = c->loader.plugins[i];
        if (p->status != CR_PLUGIN_LOADED || !p->has_frontend) continue;
        if (force_fe && strcmp(p->id, force_fe)) continue;
        cr_loader_enter(p, "score");
        int s = p->frontend.score(p->state, path, head, hn);
        cr_loader_leave();
        if (force_fe && s <= 0) s = 1;
        if (s > best_score) {
            best_score = s;
            best = p;
        }
    }
    if (!best) {
        jbuf names;
        jb_init(&names);
        for (size_t i = 0; i < c->loader.n; i++) {
            cr_plugin *p = c->loader.plugins[i];
            if (p->status == CR_PLUGIN_LOADED && p->has_frontend)
                jb_printf(&names, "%s%s", names.len ? ", " : "", p->id);
        }
        if (force_fe)
            fprintf(stderr, "crucible: no loaded frontend has id %s (loaded "
                            "frontends: %s)\n", force_fe, names.s ? names.s : "none");
        else
            fprintf(stderr,
                    "crucible: no frontend recognises %s (loaded frontends: "
                    "%s); run 'crucible plugins' to see what is installed\n",
                    path, names.s ? names.s : "none");
        jb_free(&names);
        return NULL;
    }
    cr_graph *g = ir_new();
    if (!g) die_oom();
    ir_builder_ctx bctx;
    memset(&bctx, 0, sizeof bctx);
    bctx.g = g;
    crucible_ir_builder b;
    ir_builder_init(&b, &bctx);
    cr_loader_enter(best, "load");
    int rc = best->frontend.load(best->state, path, &b);
    cr_loader_leave();
    if (status) *status = rc;
    if (rc != CRUCIBLE_OK) {
        fprintf(stderr, "crucible: %s could not read %s: %s%s%s\n", best->id,
                path, crucible_status_str(rc), bctx.err[0] ? ": " : "",
                bctx.err);
        ir_free(g);
        return NULL;
    }
    if (bctx.err[0] && c->verbosity >= 1)
        fprintf(stderr, "crucible: note from the IR builder: %s\n", bctx.err);
    if (ir_validate(g, err, sizeof err) != CRUCIBLE_OK) {
        fprintf(stderr, "crucible: %s (read by %s) is not a valid graph: %s\n",
                path, best->id, err);
        ir_free(g);
        return NULL;
    }
    if (ir_infer_shapes(g, err, sizeof err) != CRUCIBLE_OK) {
        fprintf(stderr, "crucible: %s: shape inference failed: %s\n", path,
                err);
        ir_free(g);
        return NULL;
    }
    if (used) *used = best;
    return g;
}

/* Lists nodes with op "unsupported" (one line each) to out; returns count. */
size_t cli_unsupported(const cr_graph *g, jbuf *human, jbuf *json)
{
    size_t n = 0;
    if (json) jb_putc(json, '[');
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *nd = &g->nodes[i];
        if (nd->op != CRUCIBLE_OP_UNSUPPORTED) continue;
        const char *src = ir_attr_s(nd, "source_op", "?");
        const char *why = ir_attr_s(nd, "reason", "no lowering to the canonical op set");
        if (human)
            jb_printf(human, "unsupported: node %s: op %s: %s\n", nd->name,
                      src, why);
        if (json) {
            jb_puts(json, n ? ",{\"node\":" : "{\"node\":");
            jb_jstr(json, nd->name);
            jb_puts(json, ",\"op\":");
            jb_jstr(json, src);
            jb_puts(json, ",\"reason\":");
            jb_jstr(json, why);
            jb_putc(json, '}');
        }
        n++;
    }
    if (json) jb_putc(json, ']');
    return n;
}

/* ------------------------------------------------------------- help */

static const char *const MAIN_HELP =
    "usage: crucible [--plugin-dir DIR]... [-v|-q] [--json] COMMAND [ARGS]\n"
    "\n"
    "Compiles trained neural networks into hardware: FPGA bitstreams,\n"
    "analog circuits, microcontroller firmware. Every artifact is verified\n"
    "bit-exactly against the reference interpreter by real tools.\n"
    "\n"
    "Commands:\n"
    "  plugins            list discovered plugins and their status\n"
    "  ir MODEL           print the IR text of a model\n"
    "  run MODEL          run the reference interpreter\n"
    "  compile MODEL      pre-flight, compile, verify and package\n"
    "  inspect PKG        verify every hash in a package\n"
    "  extract PKG DIR    safely unpack a package\n"
    "  boards             list board descriptions and the targets using them\n"
    "  accuracy MODEL     top-1 accuracy of a model on a test split\n"
    "  quant MODEL        post-training quantisation with a per-layer report\n"
    "  conformance DIR..  run ONNX backend-test cases against the interpreter\n"
    "  tokenize MODEL     encode text with the model's own vocabulary\n"
    "  generate MODEL     generate text with a language model (interpreter)\n"
    "  drift PKG          analog drift (temperature, age, tolerance) from the\n"
    "                     package's predictor; --verify checks it in ngspice\n"
    "\n"
    "Global options:\n"
    "  --plugin-dir DIR   search DIR for plugins first (repeatable)\n"
    "  -v, --verbose      more detail (tool output, plugin notes)\n"
    "  -q, --quiet        errors only\n"
    "  --json             machine-readable output on stdout\n"
    "  --version          print the version\n"
    "  -h, --help         this help; 'crucible COMMAND --help' for a command\n"
    "\n"
    "Plugin search order: --plugin-dir, $CRUCIBLE_PLUGIN_PATH, "
    "$XDG_DATA_HOME/crucible/plugins,\nthe system directory. Documentation: "
    "docs/ (man-style pages: docs/cli/).\n";

int cmd_plugins(cli *c, int argc, char **argv);
int cmd_ir(cli *c, int argc, char **argv);
int cmd_run(cli *c, int argc, char **argv);
int cmd_compile(cli *c, int argc, char **argv);
int cmd_inspect(cli *c, int argc, char **argv);
int cmd_extract(cli *c, int argc, char **argv);
int cmd_boards(cli *c, int argc, char **argv);
int cmd_accuracy(cli *c, int argc, char **argv);
int cmd_quant(cli *c, int argc, char **argv);
int cmd_conformance(cli *c, int argc, char **argv);
int cmd_tokenize(cli *c, int argc, char **argv);
int cmd_generate(cli *c, int argc, char **argv);
int cmd_drift(cli *c, int argc, char **argv);

int is_help(const char *a)
{
    return !strcmp(a, "-h") || !strcmp(a, "--help");
}

/* ------------------------------------------------------------ plugins */

static const char *status_name(int s)
{
    return s == CR_PLUGIN_LOADED ? "loaded"
           : s == CR_PLUGIN_DUPLICATE ? "duplicate" : "refused";
}

int cmd_plugins(cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible [--plugin-dir DIR]... plugins [--json]\n\n"
                   "Lists every discovered plugin: id, kind, version, ABI, path "
                   "and status\n(loaded, refused with the reason, or duplicate). "
                   "Exit status 0; 1 if a --plugin-dir does not exist.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else return usage_error("plugins", "unknown option %s", argv[i]);
    }
    if (cli_load_plugins(c)) return 1;
    if (c->json) {
        jbuf j;
        jb_init(&j);
        jb_puts(&j, "{\"host_abi\":");
        jb_printf(&j, "\"%d.%d\",\"plugins\":[", CRUCIBLE_ABI_MAJOR,
                  CRUCIBLE_ABI_MINOR);
        for (size_t i = 0; i < c->loader.n; i++) {
            cr_plugin *p = c->loader.plugins[i];
            jb_puts(&j, i ? ",{\"id\":" : "{\"id\":");
            jb_jstr(&j, p->id);
            jb_puts(&j, ",\"kind\":");
            jb_jstr(&j, p->kinds[0] ? p->kinds : NULL);
            jb_puts(&j, ",\"version\":");
            jb_jstr(&j, p->version);
            jb_printf(&j, ",\"abi\":\"%u.%u\",\"path\":", p->abi_major,
                      p->abi_minor);
            jb_jstr(&j, p->path);
            jb_puts(&j, ",\"status\":");
            jb_jstr(&j, status_name(p->status));
            jb_puts(&j, ",\"reason\":");
            jb_jstr(&j, p->reason[0] ? p->reason : NULL);
            jb_puts(&j, ",\"description\":");
            jb_jstr(&j, p->description);
            jb_putc(&j, '}');
        }
        jb_puts(&j, "]}\n");
        if (j.err) die_oom();
        fputs(j.s, stdout);
        jb_free(&j);
        return 0;
    }
    printf("%-22s %-16s %-9s %-5s %-9s %s\n", "ID", "KIND", "VERSION", "ABI",
           "STATUS", "PATH");
    for (size_t i = 0; i < c->loader.n; i++) {
        cr_plugin *p = c->loader.plugins[i];
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", p->abi_major, p->abi_minor);
        printf("%-22s %-16s %-9s %-5s %-9s %s\n", p->id ? p->id : "?",
               p->kinds[0] ? p->kinds : "?", p->version ? p->version : "?",
               abi, status_name(p->status), p->path);
        if (p->reason[0]) printf("    %s\n", p->reason);
    }
    return 0;
}

/* ----------------------------------------------------------------- ir */

/* `crucible ir` prints longer constants as elided(N) unless --weights. */
#define CLI_IR_MAX_INLINE 1024

int cmd_ir(cli *c, int argc, char **argv)
{
    const char *model = NULL, *fe = NULL;
    int all_weights = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible ir MODEL [--frontend ID] [--weights] "
                   "[--json]\n\n"
                   "Reads MODEL with the frontend that scores highest (or "
                   "--frontend ID) and\nprints its IR text (docs/ir.md). Source "
                   "ops that could not be lowered are\nnamed on stderr (node, "
                   "op, reason) and make the exit status 1.\n"
                   "Constants and quantisation lists longer than %d values "
                   "print as\n`elided(N)`; --weights prints every value (a "
                   "complete, parseable IR).\nWith --json: a "
                   "summary object (name, counts, ops, unsupported).\n",
                   CLI_IR_MAX_INLINE);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (!strcmp(argv[i], "--weights")) all_weights = 1;
        else if (!strcmp(argv[i], "--frontend") && i + 1 < argc) fe = argv[++i];
        else if (argv[i][0] == '-') return usage_error("ir", "unknown option %s", argv[i]);
        else if (!model) model = argv[i];
        else return usage_error("ir", "more than one MODEL given");
    }
    if (!model) return usage_error("ir", "missing MODEL");
    if (cli_load_plugins(c)) return 1;
    const cr_plugin *used = NULL;
    cr_graph *g = cli_load_model(c, model, fe, &used);
    if (!g) return 1;
    jbuf h, js;
    jb_init(&h);
    jb_init(&js);
    size_t nu = cli_unsupported(g, &h, &js);
    if (c->json) {
        jbuf o;
        jb_init(&o);
        jb_puts(&o, "{\"model\":");
        jb_jstr(&o, model);
        jb_puts(&o, ",\"frontend\":");
        jb_jstr(&o, used->id);
        jb_puts(&o, ",\"graph\":");
        jb_jstr(&o, g->name);
        jb_printf(&o, ",\"tensors\":%zu,\"nodes\":%zu,\"ops\":{", g->n_tensors,
                  g->n_nodes);
        int first = 1;
        for (int32_t op = 0; op < CRUCIBLE_OP_COUNT_; op++) {
            size_t cnt = 0;
            for (size_t i = 0; i < g->n_nodes; i++) cnt += g->nodes[i].op == op;
            if (!cnt) continue;
            jb_printf(&o, "%s\"%s\":%zu", first ? "" : ",", ir_op_name(op), cnt);
            first = 0;
        }
        jb_puts(&o, "},\"meta\":{");
        for (size_t i = 0; i < g->n_meta; i++) {
            if (i) jb_putc(&o, ',');
            jb_jstr(&o, g->meta[i].key);
            jb_putc(&o, ':');
            jb_jstr(&o, g->meta[i].value);
        }
        jb_puts(&o, "},\"unsupported\":");
        jb_puts(&o, js.s ? js.s : "[]");
        jb_puts(&o, "}\n");
        fputs(o.s, stdout);
        jb_free(&o);
    } else {
        jbuf t;
        jb_init(&t);
        ir_print_ex(g, &t, all_weights ? 0 : CLI_IR_MAX_INLINE);
        if (t.err) die_oom();
        fputs(t.s, stdout);
        jb_free(&t);
    }
    if (nu) {
        fputs(h.s, stderr);
        fprintf(stderr, "crucible: %zu node%s cannot be compiled until these "
                        "ops are supported\n", nu, nu == 1 ? "" : "s");
    }
    jb_free(&h);
    jb_free(&js);
    ir_free(g);
    return nu ? 1 : 0;
}

/* ---------------------------------------------------------------- run */

static void print_array_summary(const cr_array *a, const char *name)
{
    size_t n = tio_numel(a);
    printf("%s: %s[", name, ir_dtype_name(a->dtype));
    for (int32_t d = 0; d < a->rank; d++)
        printf("%s%lld", d ? ", " : "", (long long)a->dims[d]);
    printf("] =");
    size_t show = n < 16 ? n : 16;
    for (size_t i = 0; i < show; i++) {
        if (a->dtype == CRUCIBLE_DT_F32)
            printf(" %.6g", (double)((const float *)a->data)[i]);
        else if (a->dtype == CRUCIBLE_DT_I32)
            printf(" %d", ((const int32_t *)a->data)[i]);
        else if (a->dtype == CRUCIBLE_DT_I64)
            printf(" %lld", (long long)((const int64_t *)a->data)[i]);
        else if (a->dtype == CRUCIBLE_DT_I8)
            printf(" %d", ((const int8_t *)a->data)[i]);
        else if (a->dtype == CRUCIBLE_DT_U8)
            printf(" %u", ((const uint8_t *)a->data)[i]);
    }
    if (show < n) printf(" ... (%zu values)", n);
    printf("\n");
}

int cmd_run(cli *c, int argc, char **argv)
{
    const char *model = NULL;
    const char **inputs = NULL, **outputs = NULL;
    size_t ni = 0, no = 0;
    int rc = 1, repeat = 0;
    inputs = calloc((size_t)argc, sizeof(char *));
    outputs = calloc((size_t)argc, sizeof(char *));
    if (!inputs || !outputs) die_oom();
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible run MODEL --input FILE... [--output FILE]... "
                   "[--time N] [--json]\n\n"
                   "Runs the reference interpreter on one set of inputs (one "
                   "FILE per graph\ninput, in order; .npy or ONNX TensorProto "
                   ".pb) and prints the outputs, or\nwrites them (one --output "
                   "per graph output; the extension picks the format).\n"
                   "--time N runs the model N more times and prints the mean time "
                   "per inference.\n");
            free(inputs);
            free(outputs);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1 || repeat > 1000000) {
                free(inputs);
                free(outputs);
                return usage_error("run", "--time needs 1..1000000");
            }
        } else if ((!strcmp(argv[i], "--input") || !strcmp(argv[i], "-i")) && i + 1 < argc) {
            inputs[ni++] = argv[++i];
            while (i + 1 < argc && argv[i + 1][0] != '-') inputs[ni++] = argv[++i];
        } else if ((!strcmp(argv[i], "--output") || !strcmp(argv[i], "-o")) && i + 1 < argc)
            outputs[no++] = argv[++i];
        else if (argv[i][0] == '-') {
            free(inputs);
            free(outputs);
            return usage_error("run", "unknown option %s", argv[i]);
        } else if (!model) model = argv[i];
        else {
            free(inputs);
            free(outputs);
            return usage_error("run", "unexpected argument %s", argv[i]);
        }
    }
    if (!model) {
        free(inputs);
        free(outputs);
        return usage_error("run", "missing MODEL");
    }
    if (cli_load_plugins(c)) goto out_free;
    cr_graph *g = cli_load_model(c, model, NULL, NULL);
    if (!g) goto out_free;
    if (ni != g->n_inputs) {
        fprintf(stderr, "crucible run: %s has %zu input%s; %zu given with "
                        "--input\n", model, g->n_inputs,
                g->n_inputs == 1 ? "" : "s", ni);
        ir_free(g);
        goto out_free;
    }
    if (no && no != g->n_outputs) {
        fprintf(stderr, "crucible run: %s has %zu output%s; %zu given with "
                        "--output\n", model, g->n_outputs,
                g->n_outputs == 1 ? "" : "s", no);
        ir_free(g);
        goto out_free;
    }
    cr_array *in = cr_calloc(ni ? ni : 1, sizeof(cr_array));
    cr_array *out = cr_calloc(g->n_outputs ? g->n_outputs : 1, sizeof(cr_array));
    if (!in || !out) die_oom();
    char err[1024];
    size_t loaded = 0;
    for (; loaded < ni; loaded++) {
        if (tio_load(inputs[loaded], &in[loaded], err, sizeof err)) {
            fprintf(stderr, "crucible run: %s\n", err);
            goto out_arrays;
        }
        int32_t want = g->tensors[g->inputs[loaded]].dtype;
        if (in[loaded].dtype != want) { /* e.g. f64 .npy for an f32 input */
            cr_array cv;
            if (tio_convert(&in[loaded], want, &cv, err, sizeof err)) {
                fprintf(stderr, "crucible run: %s: %s\n", inputs[loaded], err);
                loaded++;
                goto out_arrays;
            }
            tio_free(&in[loaded]);
            in[loaded] = cv;
        }
    }
    if (interp_run(g, in, ni, out, err, sizeof err)) {
        fprintf(stderr, "crucible run: %s\n", err);
        goto out_arrays;
    }
    if (repeat) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int r = 0; r < repeat; r++) {
            cr_array *tmp = cr_calloc(g->n_outputs, sizeof(cr_array));
            if (!tmp || interp_run(g, in, ni, tmp, err, sizeof err)) die_oom();
            for (size_t k = 0; k < g->n_outputs; k++) tio_free(&tmp[k]);
            cr_free(tmp);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / repeat;
        fprintf(stderr, "crucible run: %.3f ms per inference (mean of %d runs, "
                        "reference interpreter)\n", ms, repeat);
    }
    rc = 0;
    for (size_t k = 0; k < g->n_outputs; k++) {
        const char *nm = g->tensors[g->outputs[k]].name;
        if (no) {
            if (tio_save(outputs[k], &out[k], err, sizeof err)) {
                fprintf(stderr, "crucible run: %s\n", err);
                rc = 1;
            }
        } else if (!c->json) {
            print_array_summary(&out[k], nm);
        }
    }
    if (c->json) {
        jbuf j;
        jb_init(&j);
        jb_puts(&j, "{\"outputs\":[");
        for (size_t k = 0; k < g->n_outputs; k++) {
            jb_puts(&j, k ? ",{\"name\":" : "{\"name\":");
            jb_jstr(&j, g->tensors[g->outputs[k]].name);
            jb_printf(&j, ",\"dtype\":\"%s\",\"shape\":[", ir_dtype_name(out[k].dtype));
            for (int32_t d = 0; d < out[k].rank; d++)
                jb_printf(&j, "%s%lld", d ? "," : "", (long long)out[k].dims[d]);
            jb_puts(&j, "],\"data\":[");
            size_t n = tio_numel(&out[k]);
            for (size_t e = 0; e < n; e++) {
                if (e) jb_putc(&j, ',');
                if (out[k].dtype == CRUCIBLE_DT_F32)
                    jb_jnum(&j, ((const float *)out[k].data)[e]);
                else if (out[k].dtype == CRUCIBLE_DT_I32)
                    jb_printf(&j, "%d", ((const int32_t *)out[k].data)[e]);
                else if (out[k].dtype == CRUCIBLE_DT_I64)
                    jb_printf(&j, "%lld", (long long)((const int64_t *)out[k].data)[e]);
                else if (out[k].dtype == CRUCIBLE_DT_I8)
                    jb_printf(&j, "%d", ((const int8_t *)out[k].data)[e]);
                else if (out[k].dtype == CRUCIBLE_DT_U8)
                    jb_printf(&j, "%u", ((const uint8_t *)out[k].data)[e]);
                else
                    jb_puts(&j, "null");
            }
            jb_puts(&j, "]}");
        }
        jb_puts(&j, "]}\n");
        fputs(j.s, stdout);
        jb_free(&j);
    }
    for (size_t k = 0; k < g->n_outputs; k++) tio_free(&out[k]);
out_arrays:
    for (size_t k = 0; k < loaded; k++) tio_free(&in[k]);
    cr_free(in);
    cr_free(out);
    ir_free(g);
out_free:
    free(inputs);
    free(outputs);
    return rc;
}

/* ----------------------------------------------------- inspect/extract */

int cmd_inspect(cli *c, int argc, char **argv)
{
    const char *pkg = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible inspect PKG [--json]\n\n"
                   "Reads a .tptpkg package, shows its manifest and verifies "
                   "the size and\nSHA-256 of every entry. Exit 0 if all verify, "
                   "1 if any entry is damaged,\nmissing or unlisted (each is "
                   "named), or the package is unreadable.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (argv[i][0] == '-') return usage_error("inspect", "unknown option %s", argv[i]);
        else if (!pkg) pkg = argv[i];
        else return usage_error("inspect", "more than one PKG given");
    }
    if (!pkg) return usage_error("inspect", "missing PKG");
    jbuf h, j;
    jb_init(&h);
    jb_init(&j);
    char err[1024] = "";
    int r = pkg_inspect(pkg, c->json ? NULL : &h, c->json ? &j : NULL, err,
                        sizeof err);
    if (r < 0) {
        fprintf(stderr, "crucible inspect: %s\n", err);
        if (c->json && j.s) printf("%s\n", j.s);
        jb_free(&h);
        jb_free(&j);
        return 1;
    }
    if (c->json)
        printf("%s\n", j.s ? j.s : "{}");
    else
        fputs(h.s ? h.s : "", stdout);
    if (r != 0)
        fprintf(stderr, "crucible inspect: %s failed verification (details "
                        "above)\n", pkg);
    jb_free(&h);
    jb_free(&j);
    return r == 0 ? 0 : 1;
}

int cmd_extract(cli *c, int argc, char **argv)
{
    (void)c;
    const char *pkg = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible extract PKG DIR\n\n"
                   "Verifies PKG and unpacks it into DIR (created if missing). "
                   "Refuses absolute\npaths, '..', symlinks, hardlinks, devices "
                   "and entries over the size limit;\nnever writes outside DIR "
                   "and never overwrites an existing file.\n");
            return 0;
        }
        if (argv[i][0] == '-' && strcmp(argv[i], "-"))
            return usage_error("extract", "unknown option %s", argv[i]);
        else if (!pkg) pkg = argv[i];
        else if (!dir) dir = argv[i];
        else return usage_error("extract", "unexpected argument %s", argv[i]);
    }
    if (!pkg || !dir) return usage_error("extract", "need PKG and DIR");
    char err[1024] = "";
    if (pkg_extract(pkg, dir, err, sizeof err) != 0) {
        fprintf(stderr, "crucible extract: %s\n", err);
        return 1;
    }
    if (c->verbosity >= 0) fprintf(stderr, "extracted %s into %s\n", pkg, dir);
    return 0;
}

/* -------------------------------------------------------------- boards */

void cli_collect_boards(cli *c, cr_boardset *set, const char *const *extra,
                        size_t n_extra);
void cli_collect_boards(cli *c, cr_boardset *set, const char *const *extra,
                        size_t n_extra)
{
    for (size_t i = 0; i < n_extra; i++) {
        if (cr_is_dir(extra[i])) {
            cr_boards_scan_dir(set, extra[i]);
        } else {
            char err[512];
            if (!cr_boards_add_file(set, extra[i], err, sizeof err))
                jb_printf(&set->errors, "%s\n", err);
        }
    }
    /* boards/ beside every loaded plugin (each directory once) */
    for (size_t i = 0; i < c->loader.n; i++) {
        cr_plugin *p = c->loader.plugins[i];
        if (p->status != CR_PLUGIN_LOADED || !p->dir || !p->dir[0]) continue;
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            if (c->loader.plugins[k]->dir &&
                !strcmp(c->loader.plugins[k]->dir, p->dir))
                seen = 1;
        if (seen) continue;
        char *bd = cr_path_join(p->dir, "boards");
        if (bd) cr_boards_scan_dir(set, bd);
        cr_free(bd);
    }
}

/* Asks the target whether it accepts the board; reason into why. */
int cli_accept_board(cr_plugin *p, const cr_board *b, char *why, size_t n)
{
    why[0] = 0;
    if (!p->target.accept_board) return CRUCIBLE_OK;
    cr_loader_enter(p, "accept_board");
    int rc = p->target.accept_board(p->state, &b->view, why, n);
    cr_loader_leave();
    why[n - 1] = 0;
    if (rc != CRUCIBLE_OK && !why[0])
        snprintf(why, n, "refused (%s)", crucible_status_str(rc));
    return rc;
}

int cmd_boards(cli *c, int argc, char **argv)
{
    const char **extra = calloc((size_t)argc, sizeof(char *));
    size_t ne = 0;
    if (!extra) die_oom();
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible boards [--board-dir DIR|FILE]... [--json]\n\n"
                   "Lists board descriptions (INI files, docs/boards.md) found in "
                   "boards/ beside\nevery loaded plugin and in the given paths, "
                   "with the target each is for and\nwhether that target "
                   "accepts it (or why not).\n");
            free(extra);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (!strcmp(argv[i], "--board-dir") && i + 1 < argc) extra[ne++] = argv[++i];
        else {
            free(extra);
            return usage_error("boards", "unknown argument %s", argv[i]);
        }
    }
    if (cli_load_plugins(c)) {
        free(extra);
        return 1;
    }
    cr_boardset set;
    memset(&set, 0, sizeof set);
    cli_collect_boards(c, &set, extra, ne);
    free(extra);
    jbuf j;
    jb_init(&j);
    jb_puts(&j, "{\"boards\":[");
    if (!c->json)
        printf("%-20s %-16s %-10s %s\n", "BOARD", "TARGET", "STATUS", "FILE");
    int bad = 0;
    for (size_t i = 0; i < set.n; i++) {
        cr_board *b = set.boards[i];
        cr_plugin *p = cr_loader_find(&c->loader, b->view.target, "target");
        char why[512] = "";
        const char *st;
        if (!p) {
            st = "no-target";
            snprintf(why, sizeof why, "no loaded target plugin %s",
                     b->view.target);
        } else if (cli_accept_board(p, b, why, sizeof why) != CRUCIBLE_OK) {
            st = "refused";
            bad = 1;
        } else {
            st = "ok";
        }
        const char *arch = cr_kv_get(b->kv, "board", "arch");
        if (c->json) {
            jb_puts(&j, i ? ",{\"name\":" : "{\"name\":");
            jb_jstr(&j, b->view.name);
            jb_puts(&j, ",\"target\":");
            jb_jstr(&j, b->view.target);
            jb_puts(&j, ",\"arch\":");
            jb_jstr(&j, arch);
            jb_puts(&j, ",\"path\":");
            jb_jstr(&j, b->kv->doc.path);
            jb_puts(&j, ",\"status\":");
            jb_jstr(&j, st);
            jb_puts(&j, ",\"reason\":");
            jb_jstr(&j, why[0] ? why : NULL);
            jb_putc(&j, '}');
        } else {
            printf("%-20s %-16s %-10s %s\n", b->view.name, b->view.target, st,
                   b->kv->doc.path);
            if (why[0]) printf("    %s\n", why);
        }
    }
    jb_puts(&j, "],\"errors\":[");
    if (set.errors.s) {
        char *save = NULL;
        int first = 1;
        for (char *l = strtok_r(set.errors.s, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
            if (!c->json) fprintf(stderr, "crucible boards: %s\n", l);
            if (!first) jb_putc(&j, ',');
            jb_jstr(&j, l);
            first = 0;
            bad = 1;
        }
    }
    jb_puts(&j, "]}\n");
    if (c->json) fputs(j.s, stdout);
    jb_free(&j);
    cr_boards_free(&set);
    return bad ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

int cli_main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    c.argv0 = argv[0];
    c.plugin_dirs = calloc((size_t)argc + 1, sizeof(char *));
    if (!c.plugin_dirs) die_oom();
    install_crash_handlers();
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--plugin-dir")) {
            if (i + 1 >= argc) return usage_error(NULL, "--plugin-dir needs a directory");
            c.plugin_dirs[c.n_plugin_dirs++] = argv[++i];
        } else if (!strncmp(a, "--plugin-dir=", 13)) {
            c.plugin_dirs[c.n_plugin_dirs++] = a + 13;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c.verbosity = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.verbosity = -1;
        } else if (!strcmp(a, "--json")) {
            c.json = 1;
        } else if (is_help(a)) {
            fputs(MAIN_HELP, stdout);
            free(c.plugin_dirs);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("crucible %s (plugin ABI %d.%d)\n", CRUCIBLE_VERSION,
                   CRUCIBLE_ABI_MAJOR, CRUCIBLE_ABI_MINOR);
            free(c.plugin_dirs);
            return 0;
        } else if (a[0] == '-') {
            free(c.plugin_dirs);
            return usage_error(NULL, "unknown option %s", a);
        } else {
            break;
        }
    }
    if (i >= argc) {
        fputs(MAIN_HELP, stderr);
        free(c.plugin_dirs);
        return 2;
    }
    cr_host_set_verbosity(c.verbosity);
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    int rc;
    if (!strcmp(cmd, "plugins")) rc = cmd_plugins(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "ir")) rc = cmd_ir(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "run")) rc = cmd_run(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "compile")) rc = cmd_compile(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "inspect")) rc = cmd_inspect(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "extract")) rc = cmd_extract(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "boards")) rc = cmd_boards(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "accuracy")) rc = cmd_accuracy(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "quant")) rc = cmd_quant(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "conformance")) rc = cmd_conformance(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "tokenize")) rc = cmd_tokenize(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "generate")) rc = cmd_generate(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "drift")) rc = cmd_drift(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "help")) {
        fputs(MAIN_HELP, stdout);
        rc = 0;
    } else
        rc = usage_error(NULL, "unknown command '%s'", cmd);
    fflush(stdout);
    if (c.loaded) cr_loader_free(&c.loader);
    free(c.plugin_dirs);
    return rc;
}
