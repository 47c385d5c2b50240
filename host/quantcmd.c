/*
 * quantcmd.c - `crucible quant`: post-training quantisation of a float
 * model with calibration samples; prints the per-layer report (scales,
 * zero points, bit widths, SQNR against float) and writes the quantised
 * IR text (docs/cli/quant.md, docs/quantisation.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "quant.h"

int quant_cli_mode(const char *v, quant_opts *o)
{
    if (!strcmp(v, "mixed")) {
        o->mixed = 1;
        o->weights = QF_INT8;
        return 0;
    }
    o->mixed = 0;
    return quant_fmt_parse(v, &o->weights) || o->weights == QF_FLOAT ? -1 : 0;
}

int quant_cli_method(const char *v, quant_opts *o)
{
    if (!strcmp(v, "minmax")) o->method = QM_MINMAX;
    else if (!strcmp(v, "percentile")) o->method = QM_PERCENTILE;
    else return -1;
    return 0;
}

static void quant_help(void)
{
    printf(
        "usage: crucible quant MODEL --calib FILE|DIR... [--samples N]\n"
        "                      [--quant int8|int4|ternary|binary|mixed]\n"
        "                      [--method minmax|percentile] [--percentile P]\n"
        "                      [--config FILE.ini] [--frontend ID] [--json]\n"
        "                      [-o OUT.crir]\n"
        "\n"
        "Quantises a float model after training: int8 activations (per tensor,\n"
        "asymmetric, ranges from the calibration samples), weights per output\n"
        "channel in the chosen format, TFLite integer semantics. Prints per layer\n"
        "the scales, zero points, bit widths and the SQNR against the float model\n"
        "on the calibration samples. A model that arrives quantised keeps its\n"
        "parameters. docs/quantisation.md describes the method.\n"
        "\n"
        "  --calib FILE|DIR   calibration inputs (.npy/.pb; a single-input model\n"
        "                     may take a batch stacked along the first axis; a DIR\n"
        "                     gives its files, or its test_data_set_N/input_K)\n"
        "  --samples N        use the first N calibration samples\n"
        "  --quant FMT        weight format (default int8); mixed: int8 with\n"
        "                     [layer.<node>] quant = FMT overrides from --config\n"
        "  --method M         activation ranges: percentile (default, 99.99 %%)\n"
        "                     or minmax\n"
        "  --percentile P     the percentile (50 < P <= 100)\n"
        "  --config FILE      INI with [layer.<node>] quant = int8|int4|ternary|\n"
        "                     binary|float\n"
        "  -o OUT.crir        write the quantised IR text\n"
        "  --json             the report as JSON on stdout\n");
}

int cmd_quant(cli *c, int argc, char **argv);
int cmd_quant(cli *c, int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *cfg = NULL, *fe = NULL;
    const char **calib = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_calib = 0, limit = 0;
    quant_opts o;
    memset(&o, 0, sizeof o);
    o.weights = QF_INT8;
    o.method = QM_PERCENTILE;
    o.percentile = 99.99;
    if (!calib) die_oom();
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (is_help(a)) {
            quant_help();
            free(calib);
            return 0;
        } else if (!strcmp(a, "--json")) c->json = 1;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out = argv[++i];
        else if (!strcmp(a, "--config") && has) cfg = argv[++i];
        else if (!strcmp(a, "--frontend") && has) fe = argv[++i];
        else if (!strcmp(a, "--calib") && has) {
            calib[n_calib++] = argv[++i];
            while (i + 1 < argc && argv[i + 1][0] != '-') calib[n_calib++] = argv[++i];
        } else if (!strcmp(a, "--samples") && has) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 1) {
                free(calib);
                return usage_error("quant", "--samples needs a positive number");
            }
            limit = (size_t)v;
        } else if (!strcmp(a, "--quant") && has) {
            if (quant_cli_mode(argv[++i], &o)) {
                free(calib);
                return usage_error("quant", "--quant %s: expected int8, int4, "
                                   "ternary, binary or mixed", argv[i]);
            }
        } else if (!strcmp(a, "--method") && has) {
            if (quant_cli_method(argv[++i], &o)) {
                free(calib);
                return usage_error("quant", "--method %s: expected minmax or "
                                   "percentile", argv[i]);
            }
        } else if (!strcmp(a, "--percentile") && has) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || !(v > 50.0 && v <= 100.0)) {
                free(calib);
                return usage_error("quant", "--percentile needs a number in "
                                   "(50, 100]");
            }
            o.percentile = v;
        } else if (a[0] == '-') {
            free(calib);
            return usage_error("quant", "unknown option %s (or missing value)", a);
        } else if (!model) model = a;
        else {
            free(calib);
            return usage_error("quant", "unexpected argument %s", a);
        }
    }
    if (!model || !n_calib) {
        free(calib);
        return usage_error("quant", "need MODEL and --calib FILE|DIR");
    }
    char err[2048] = "";
    cr_kvdoc *config = NULL;
    cr_graph *g = NULL, *q = NULL;
    cr_array *samples = NULL;
    size_t ns = 0;
    quant_report rep;
    memset(&rep, 0, sizeof rep);
    if (cfg && !(config = cr_kv_load(cfg, err, sizeof err))) {
        fprintf(stderr, "crucible quant: config: %s\n", err);
        goto done;
    }
    o.config = config;
    if (cli_load_plugins(c)) goto done;
    g = cli_load_model(c, model, fe, NULL);
    if (!g) goto done;
    if (cli_unsupported(g, NULL, NULL)) {
        jbuf uh;
        jb_init(&uh);
        size_t nu = cli_unsupported(g, &uh, NULL);
        fprintf(stderr, "crucible quant: %zu node%s could not be lowered:\n%s",
                nu, nu == 1 ? "" : "s", uh.s ? uh.s : "");
        jb_free(&uh);
        goto done;
    }
    if (quant_load_calib(g, calib, n_calib, limit, &samples, &ns, err,
                         sizeof err)) {
        fprintf(stderr, "crucible quant: calibration: %s\n", err);
        goto done;
    }
    if (quant_graph(g, samples, ns, &o, &q, &rep, err, sizeof err)) {
        fprintf(stderr, "crucible quant: %s\n", err);
        goto done;
    }
    if (c->json) {
        jbuf j;
        jb_init(&j);
        quant_report_json(&rep, model, &j);
        if (j.err) die_oom();
        printf("%s\n", j.s);
        jb_free(&j);
    } else {
        printf("%s: ", model);
        quant_report_text(&rep, stdout);
    }
    if (out) {
        jbuf t;
        jb_init(&t);
        ir_print(q ? q : g, &t);
        if (t.err) die_oom();
        if (cr_write_file_atomic(out, t.s, t.len, err, sizeof err)) {
            fprintf(stderr, "crucible quant: %s\n", err);
            jb_free(&t);
            goto done;
        }
        jb_free(&t);
        if (!c->json && c->verbosity >= 0)
            printf("wrote %s%s\n", out, q ? "" : " (the model unchanged)");
    }
    rc = 0;
done:
    quant_report_free(&rep);
    quant_samples_free(samples, ns * (g ? g->n_inputs : 0));
    ir_free(q);
    ir_free(g);
    cr_kv_free(config);
    free(calib);
    return rc;
}
