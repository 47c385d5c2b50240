/*
 * eval.c - `crucible accuracy` (test-split accuracy measured by the
 * reference interpreter) and `crucible conformance` (the ONNX backend-test
 * layout: model.onnx + test_data_set_N/{input_K,output_K}.pb).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "interp.h"
#include "tensorio.h"

/* Element i of a as a double (NaN for a non-numeric dtype). */
static double elem(const cr_array *a, size_t i)
{
    switch (a->dtype) {
    case CRUCIBLE_DT_F32: {
        float v;
        memcpy(&v, (const uint8_t *)a->data + 4 * i, 4);
        return v;
    }
    case CRUCIBLE_DT_I32:
    case CRUCIBLE_DT_I64:
    case CRUCIBLE_DT_I16:
    case CRUCIBLE_DT_I8:
    case CRUCIBLE_DT_U8:
    case CRUCIBLE_DT_BOOL: return (double)ir_elem_i64(a->dtype, a->data, i);
    default: return NAN;
    }
}

/* ------------------------------------------------------------ accuracy */

int cmd_accuracy(cli *c, int argc, char **argv);
int cmd_accuracy(cli *c, int argc, char **argv)
{
    const char *model = NULL, *xs = NULL, *ys = NULL;
    size_t limit = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible accuracy MODEL --inputs X.npy --labels Y.npy "
                   "[--limit N] [--json]\n\n"
                   "Runs the reference interpreter on every sample of a test "
                   "split and reports\ntop-1 accuracy: X holds N samples along "
                   "its first axis (each reshaped to the\nmodel's single input "
                   "shape), Y holds N integer class labels; the prediction\nis "
                   "the argmax of the model's first output.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (!strcmp(argv[i], "--inputs") && i + 1 < argc) xs = argv[++i];
        else if (!strcmp(argv[i], "--labels") && i + 1 < argc) ys = argv[++i];
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] == '-') return usage_error("accuracy", "unknown option %s", argv[i]);
        else if (!model) model = argv[i];
        else return usage_error("accuracy", "unexpected argument %s", argv[i]);
    }
    if (!model || !xs || !ys) return usage_error("accuracy", "need MODEL, --inputs and --labels");
    if (cli_load_plugins(c)) return 1;
    cr_graph *g = cli_load_model(c, model, NULL, NULL);
    if (!g) return 1;
    int rc = 1;
    char err[1024];
    cr_array X, Y, Xf;
    memset(&X, 0, sizeof X);
    memset(&Y, 0, sizeof Y);
    memset(&Xf, 0, sizeof Xf);
    if (g->n_inputs != 1 || g->n_outputs < 1) {
        fprintf(stderr, "crucible accuracy: the model must have one input "
                        "(it has %zu)\n", g->n_inputs);
        goto out;
    }
    if (tio_load(xs, &X, err, sizeof err) || tio_load(ys, &Y, err, sizeof err)) {
        fprintf(stderr, "crucible accuracy: %s\n", err);
        goto out;
    }
    const cr_tensor *in = &g->tensors[g->inputs[0]];
    uint64_t per = ir_numel(in);
    size_t total = tio_numel(&X);
    if (X.rank < 1 || !per || X.dims[0] <= 0 || total % (size_t)X.dims[0] ||
        total / (size_t)X.dims[0] != per) {
        fprintf(stderr, "crucible accuracy: %s: each of the %lld samples has "
                        "%zu values; the model input %s needs %llu\n",
                xs, X.rank ? (long long)X.dims[0] : 0LL,
                X.rank && X.dims[0] > 0 ? total / (size_t)X.dims[0] : (size_t)0,
                in->name, (unsigned long long)per);
        goto out;
    }
    size_t n = (size_t)X.dims[0];
    if (tio_numel(&Y) != n) {
        fprintf(stderr, "crucible accuracy: %zu labels for %zu samples\n",
                tio_numel(&Y), n);
        goto out;
    }
    if (limit && limit < n) n = limit;
    if (X.dtype != in->dtype) {
        if (tio_convert(&X, in->dtype, &Xf, err, sizeof err)) {
            fprintf(stderr, "crucible accuracy: %s\n", err);
            goto out;
        }
    }
    const cr_array *src = Xf.data ? &Xf : &X;
    size_t es = interp_elem_size(in->dtype);
    size_t correct = 0;
    for (size_t s = 0; s < n; s++) {
        cr_array one;
        memset(&one, 0, sizeof one);
        one.dtype = in->dtype;
        one.rank = in->rank;
        memcpy(one.dims, in->dims, sizeof one.dims);
        one.data = (uint8_t *)src->data + s * per * es;
        one.bytes = per * es;
        cr_array *outs = cr_calloc(g->n_outputs, sizeof(cr_array));
        if (!outs) die_oom();
        if (interp_run(g, &one, 1, outs, err, sizeof err)) {
            fprintf(stderr, "crucible accuracy: sample %zu: %s\n", s, err);
            cr_free(outs);
            goto out;
        }
        size_t m = tio_numel(&outs[0]), best = 0;
        for (size_t k = 1; k < m; k++)
            if (elem(&outs[0], k) > elem(&outs[0], best)) best = k;
        if ((double)best == elem(&Y, s)) correct++;
        for (size_t k = 0; k < g->n_outputs; k++) tio_free(&outs[k]);
        cr_free(outs);
    }
    double acc = n ? (double)correct / (double)n : 0.0;
    if (c->json)
        printf("{\"model\":\"%s\",\"samples\":%zu,\"correct\":%zu,\"accuracy\":%.6f}\n",
               cr_basename(model), n, correct, acc);
    else
        printf("%s: top-1 accuracy %.4f (%zu / %zu) by the reference "
               "interpreter\n", model, acc, correct, n);
    rc = 0;
out:
    tio_free(&X);
    tio_free(&Y);
    tio_free(&Xf);
    ir_free(g);
    return rc;
}

/* --------------------------------------------------------- conformance */

typedef struct conf_stats {
    size_t pass, fail, skip;
    jbuf unsupported_ops; /* "op\n" lines */
    jbuf json;
} conf_stats;

static int is_case_dir(const char *d)
{
    char *m = cr_path_join(d, "model.onnx");
    int r = m && cr_is_file(m);
    cr_free(m);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted subdirectory names of d matching a prefix (NULL = any). */
static char **list_dirs(const char *d, const char *prefix, size_t *n)
{
    DIR *dh = opendir(d);
    *n = 0;
    if (!dh) return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.') continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix))) continue;
        char *p = cr_path_join(d, e->d_name);
        if (!p || !cr_is_dir(p) || cr_grow((void **)&v, &cap, *n + 1, sizeof(char *))) {
            cr_free(p);
            continue;
        }
        v[(*n)++] = p;
    }
    closedir(dh);
    if (*n) qsort(v, *n, sizeof(char *), cmp_str);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) cr_free(v[i]);
    cr_free(v);
}

/* Returns 0 pass, 1 fail, 2 skipped; msg gets the detail. */
static int run_case(cli *c, const char *dir, double rtol, double atol,
                    char *msg, size_t msglen, jbuf *unsup)
{
    char err[1024] = "";
    char *model = cr_path_join(dir, "model.onnx");
    cr_graph *g = NULL;
    int verdict = 1;
    size_t nsets = 0;
    char **sets = NULL;
    if (!model) die_oom();
    int st = CRUCIBLE_E_GENERIC;
    g = cli_load_model_st(c, model, NULL, NULL, &st);
    if (!g) {
        const char *why = cr_host_last_error();
        if (st == CRUCIBLE_E_UNSUPPORTED) {
            snprintf(msg, msglen, "unsupported: %s", why[0] ? why : "refused by the frontend");
            jb_printf(unsup, "%s\n", "(frontend: unsupported types)");
            verdict = 2;
        } else {
            snprintf(msg, msglen, "model could not be loaded: %s",
                     why[0] ? why : "see the message above");
        }
        goto out;
    }
    jbuf uh;
    jb_init(&uh);
    if (cli_unsupported(g, NULL, NULL)) {
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == CRUCIBLE_OP_UNSUPPORTED) {
                const char *op = ir_attr_s(&g->nodes[i], "source_op", "?");
                if (!uh.len || !strstr(uh.s, op)) jb_printf(&uh, "%s%s", uh.len ? ", " : "", op);
                jb_printf(unsup, "%s\n", op);
            }
        snprintf(msg, msglen, "unsupported: %s", uh.s ? uh.s : "?");
        jb_free(&uh);
        verdict = 2;
        goto out;
    }
    jb_free(&uh);
    sets = list_dirs(dir, "test_data_set_", &nsets);
    if (!nsets) {
        snprintf(msg, msglen, "no test_data_set_N folders");
        goto out;
    }
    double worst = 0;
    for (size_t s = 0; s < nsets; s++) {
        cr_array *in = cr_calloc(g->n_inputs + 1, sizeof(cr_array));
        cr_array *out = cr_calloc(g->n_outputs + 1, sizeof(cr_array));
        cr_array *exp = cr_calloc(g->n_outputs + 1, sizeof(cr_array));
        if (!in || !out || !exp) die_oom();
        int ok = 1;
        for (size_t k = 0; ok && k < g->n_inputs; k++) {
            char fn[64];
            snprintf(fn, sizeof fn, "input_%zu.pb", k);
            char *p = cr_path_join(sets[s], fn);
            if (tio_load(p, &in[k], err, sizeof err)) {
                snprintf(msg, msglen, "%s", err);
                ok = 0;
            } else if (in[k].dtype != g->tensors[g->inputs[k]].dtype) {
                cr_array cv;
                if (tio_convert(&in[k], g->tensors[g->inputs[k]].dtype, &cv, err, sizeof err)) {
                    snprintf(msg, msglen, "%s", err);
                    ok = 0;
                } else {
                    tio_free(&in[k]);
                    in[k] = cv;
                }
            }
            cr_free(p);
        }
        for (size_t k = 0; ok && k < g->n_outputs; k++) {
            char fn[64];
            snprintf(fn, sizeof fn, "output_%zu.pb", k);
            char *p = cr_path_join(sets[s], fn);
            if (tio_load(p, &exp[k], err, sizeof err)) {
                snprintf(msg, msglen, "%s", err);
                ok = 0;
            }
            cr_free(p);
        }
        if (ok && interp_run(g, in, g->n_inputs, out, err, sizeof err)) {
            snprintf(msg, msglen, "%s: %s", cr_basename(sets[s]), err);
            ok = 0;
        }
        for (size_t k = 0; ok && k < g->n_outputs; k++) {
            size_t n = tio_numel(&out[k]), ne = tio_numel(&exp[k]);
            if (n != ne || out[k].rank != exp[k].rank ||
                memcmp(out[k].dims, exp[k].dims, sizeof(int64_t) * (size_t)out[k].rank)) {
                snprintf(msg, msglen, "%s output %zu: shape mismatch (%zu vs %zu "
                                      "elements, rank %d vs %d)",
                         cr_basename(sets[s]), k, n, ne, (int)out[k].rank,
                         (int)exp[k].rank);
                ok = 0;
                break;
            }
            /* integer outputs must match exactly; floats within tolerance */
            int exact = exp[k].dtype != CRUCIBLE_DT_F32 && exp[k].dtype != CRUCIBLE_DT_F16;
            for (size_t i = 0; i < n; i++) {
                double a = elem(&out[k], i), b = elem(&exp[k], i);
                if (isnan(a) && isnan(b)) continue;
                double d = fabs(a - b);
                if (isinf(a) && isinf(b) && (a > 0) == (b > 0)) d = 0;
                if (exact ? (ir_elem_i64(out[k].dtype, out[k].data, i) !=
                                 ir_elem_i64(exp[k].dtype, exp[k].data, i) ||
                             out[k].dtype == CRUCIBLE_DT_F32)
                          : !(d <= atol + rtol * fabs(b))) {
                    snprintf(msg, msglen, "%s output %zu index %zu: got %.9g, "
                                          "expected %.9g (abs err %.3g)",
                             cr_basename(sets[s]), k, i, a, b, d);
                    ok = 0;
                    break;
                }
                if (d > worst) worst = d;
            }
        }
        for (size_t k = 0; k < g->n_inputs; k++) tio_free(&in[k]);
        for (size_t k = 0; k < g->n_outputs; k++) {
            tio_free(&out[k]);
            tio_free(&exp[k]);
        }
        cr_free(in);
        cr_free(out);
        cr_free(exp);
        if (!ok) goto out;
    }
    snprintf(msg, msglen, "%zu test set%s, max abs err %.3g", nsets,
             nsets == 1 ? "" : "s", worst);
    verdict = 0;
out:
    free_list(sets, nsets);
    ir_free(g);
    cr_free(model);
    return verdict;
}

static void conf_case(cli *c, const char *dir, double rtol, double atol,
                      conf_stats *st)
{
    char msg[1024] = "";
    int v = run_case(c, dir, rtol, atol, msg, sizeof msg, &st->unsupported_ops);
    const char *name = cr_basename(dir);
    if (v == 0) st->pass++;
    else if (v == 1) st->fail++;
    else st->skip++;
    if (!c->json)
        printf("%-11s %s: %s\n", v == 0 ? "pass" : v == 1 ? "FAIL" : "unsupported",
               name, msg);
    jb_puts(&st->json, (st->pass + st->fail + st->skip) > 1 ? ",{\"case\":" : "{\"case\":");
    jb_jstr(&st->json, dir);
    jb_puts(&st->json, ",\"verdict\":");
    jb_jstr(&st->json, v == 0 ? "pass" : v == 1 ? "fail" : "unsupported");
    jb_puts(&st->json, ",\"detail\":");
    jb_jstr(&st->json, msg);
    jb_putc(&st->json, '}');
    fflush(stdout);
}

int cmd_conformance(cli *c, int argc, char **argv);
int cmd_conformance(cli *c, int argc, char **argv)
{
    double rtol = 1e-3, atol = 1e-5;
    const char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    size_t nd = 0;
    if (!dirs) die_oom();
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: crucible conformance DIR... [--rtol R] [--atol A] [--json]\n\n"
                   "Runs test cases in the ONNX backend-test layout (model.onnx and\n"
                   "test_data_set_N/{input_K,output_K}.pb) through the frontend and the\n"
                   "reference interpreter. DIR is a case, or a folder of cases. One line per\n"
                   "case (pass / FAIL with the first error / unsupported: ops), then a\n"
                   "count of unsupported cases by op and 'N passed, N failed, N skipped'\n"
                   "(skipped = unsupported). Integer outputs must match exactly; floats:\n"
                   "|got-want| <= atol + rtol*|want| "
                   "with rtol 1e-3, atol 1e-5. Exit 1 if any supported case fails.\n");
            free(dirs);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) c->json = 1;
        else if (!strcmp(argv[i], "--rtol") && i + 1 < argc) rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--atol") && i + 1 < argc) atol = atof(argv[++i]);
        else if (argv[i][0] == '-') {
            free(dirs);
            return usage_error("conformance", "unknown option %s", argv[i]);
        } else dirs[nd++] = argv[i];
    }
    if (!nd) {
        free(dirs);
        return usage_error("conformance", "missing DIR");
    }
    if (cli_load_plugins(c)) {
        free(dirs);
        return 1;
    }
    if (c->verbosity < 1) cr_host_set_verbosity(-2); /* per-case lines say it */
    conf_stats st;
    memset(&st, 0, sizeof st);
    jb_init(&st.json);
    jb_puts(&st.json, "{\"cases\":[");
    int bad_dir = 0;
    for (size_t d = 0; d < nd; d++) {
        if (is_case_dir(dirs[d])) {
            conf_case(c, dirs[d], rtol, atol, &st);
            continue;
        }
        size_t n;
        char **cases = list_dirs(dirs[d], NULL, &n);
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            if (is_case_dir(cases[i])) {
                conf_case(c, cases[i], rtol, atol, &st);
                found++;
            }
        free_list(cases, n);
        if (!found) {
            fprintf(stderr, "crucible conformance: %s holds no test cases "
                            "(folders with model.onnx)\n", dirs[d]);
            bad_dir = 1;
        }
    }
    /* unsupported ops, by number of cases */
    jb_puts(&st.json, "],\"unsupported_ops\":{");
    if (st.unsupported_ops.s) {
        char *s = st.unsupported_ops.s;
        size_t cnt = 0;
        char **ops = NULL;
        size_t cap = 0;
        for (char *l = strtok(s, "\n"); l; l = strtok(NULL, "\n"))
            if (!cr_grow((void **)&ops, &cap, cnt + 1, sizeof(char *))) ops[cnt++] = l;
        if (cnt) qsort(ops, cnt, sizeof(char *), cmp_str);
        if (!c->json && cnt) printf("unsupported ops (occurrences):");
        int first = 1;
        for (size_t i = 0; i < cnt;) {
            size_t j = i;
            while (j < cnt && !strcmp(ops[j], ops[i])) j++;
            if (!c->json) printf(" %s=%zu", ops[i], j - i);
            jb_printf(&st.json, "%s", first ? "" : ",");
            jb_jstr(&st.json, ops[i]);
            jb_printf(&st.json, ":%zu", j - i);
            first = 0;
            i = j;
        }
        if (!c->json && cnt) printf("\n");
        cr_free(ops);
    }
    jb_printf(&st.json, "},\"passed\":%zu,\"failed\":%zu,\"skipped\":%zu}\n",
              st.pass, st.fail, st.skip);
    if (c->json) fputs(st.json.s, stdout);
    else printf("%zu passed, %zu failed, %zu skipped\n", st.pass, st.fail, st.skip);
    jb_free(&st.json);
    jb_free(&st.unsupported_ops);
    free(dirs);
    return (st.fail || bad_dir) ? 1 : 0;
}
