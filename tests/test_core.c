/* test_core.c - IR (text form, validation, views, builder) and CLI tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "ir.h"
#include "runner.h"

/* A text in canonical form exercising every feature of the format. */
static const char *const FULL_TEXT =
    "crucible-ir 1\n"
    "graph \"my graph\"\n"
    "meta producer \"hand \\\"quoted\\\" \\\\ tab\\tnl\\n\"\n"
    "meta opset \"13\"\n"
    "tensor in.0 : f32[1, 3, 4, 4]\n"
    "tensor \"conv/w:0\" : i8[2, 3, 1, 1] quant(axis=0, scales=[0.5, 0.25], "
    "zero_points=[0, 0]) = [1, -2, 3, -128, 127, 0]\n"
    "tensor bias : i32[2] = [100, -100]\n"
    "tensor w4 : i4[2, 3] = [-8, 7, 0, -1, 1, 3]\n"
    "tensor wt : ternary[5] = [-1, 0, 1, 1, -1]\n"
    "tensor wb : binary[9] = [1, -1, -1, 1, 1, 1, -1, 1, -1]\n"
    "tensor u : u8[2] quant(axis=-1, scales=[0.0078125], zero_points=[128]) = [0, 255]\n"
    "tensor h : f16[2] = [0x3c00, 0xc000]\n"
    "tensor f : f32[4] = [1.5, -0, 3.40282347e+38, 1.17549435e-38]\n"
    "tensor big : i64[3] = [9007199254740993, -9223372036854775808, 9223372036854775807]\n"
    "tensor c1 : f32[1, 2, 4, 4]\n"
    "tensor \"_\" : f32[?, 2]\n"
    "tensor out : f32[1, 2, ?, ?]\n"
    "node \"conv 1\" : conv2d(in.0, \"conv/w:0\", bias) -> (c1) {strides=[1, 1], "
    "pads=[0, 0, 0, 0], group=1, alpha=0.5, empty=[], fl=f[1.0, -2.5, 1e-300], "
    "s=\"x,y\", big=-9007199254740991, ends=[9223372036854775807, -9223372036854775808]}\n"
    "node odd : unsupported(c1, _) -> (\"_\") {source_op=\"onnx:LSTM\", "
    "reason=\"not lowered\"}\n"
    "node relu : relu(c1) -> (out)\n"
    "inputs (in.0)\n"
    "outputs (out, \"_\")\n";

static cr_graph *parse(const char *t, char *err, size_t n)
{
    return ir_parse(t, strlen(t), "test.crir", err, n);
}

TEST(test_ir_text_roundtrip)
{
    char err[512];
    cr_graph *g = parse(FULL_TEXT, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    jbuf b;
    jb_init(&b);
    ir_print(g, &b);
    CHECK_MSG(b.s && strcmp(b.s, FULL_TEXT) == 0, "printed:\n%s", b.s);
    /* and once more: text -> IR -> text is the identity */
    cr_graph *g2 = parse(b.s, err, sizeof err);
    CHECK_MSG(g2 != NULL, "%s", err);
    jbuf b2;
    jb_init(&b2);
    ir_print(g2, &b2);
    CHECK(strcmp(b.s, b2.s) == 0);
    /* packed data as documented */
    int32_t t = ir_find_tensor(g, "w4");
    CHECK(t >= 0 && g->tensors[t].data_bytes == 3);
    CHECK(((uint8_t *)g->tensors[t].data)[0] == 0x78); /* -8 low, 7 high */
    t = ir_find_tensor(g, "wt");
    CHECK(g->tensors[t].data_bytes == 2);
    CHECK(((uint8_t *)g->tensors[t].data)[0] == (3 | 0 << 2 | 1 << 4 | 1 << 6));
    t = ir_find_tensor(g, "wb");
    CHECK(g->tensors[t].data_bytes == 2);
    CHECK(((uint8_t *)g->tensors[t].data)[0] == (1 | 8 | 16 | 32 | 128));
    CHECK(g->n_inputs == 1 && g->n_outputs == 2);
    const cr_node *n = &g->nodes[0];
    CHECK(ir_attr(n, "empty")->type == CRUCIBLE_ATTR_INTS);
    CHECK(ir_attr(n, "fl")->type == CRUCIBLE_ATTR_FLOATS);
    CHECK(ir_attr(n, "alpha")->type == CRUCIBLE_ATTR_FLOAT);
    CHECK(ir_attr_i(n, "big", 0) == -9007199254740991LL);
    CHECK(ir_attr(n, "ends")->ints[0] == INT64_MAX);
    t = ir_find_tensor(g, "big");
    CHECK(((int64_t *)g->tensors[t].data)[0] == 9007199254740993LL);
    CHECK(((int64_t *)g->tensors[t].data)[1] == INT64_MIN);
    jb_free(&b);
    jb_free(&b2);
    ir_free(g);
    ir_free(g2);
    return TEST_PASS;
}

TEST(test_ir_text_example_roundtrip)
{
    char err[512];
    size_t len;
    uint8_t *txt = cr_read_file(CR_SOURCE_DIR "/docs/examples/tiny-mlp.crir", &len,
                                0, err, sizeof err);
    CHECK_MSG(txt, "%s", err);
    cr_graph *g = ir_parse((char *)txt, len, "tiny-mlp.crir", err, sizeof err);
    CHECK_MSG(g, "%s", err);
    jbuf a, b;
    jb_init(&a);
    jb_init(&b);
    ir_print(g, &a);
    cr_graph *g2 = ir_parse(a.s, a.len, "again", err, sizeof err);
    CHECK_MSG(g2, "%s", err);
    ir_print(g2, &b);
    CHECK(strcmp(a.s, b.s) == 0);
    CHECK(g->n_nodes == 4 && g->n_tensors == 9);
    jb_free(&a);
    jb_free(&b);
    ir_free(g);
    ir_free(g2);
    free(txt);
    return TEST_PASS;
}

static const struct {
    const char *text;
    const char *expect; /* substring of the error */
} BAD[] = {
    {"", "empty file"},
    {"hello\n", "not crucible IR"},
    {"crucible-ir 2\n", "version 2"},
    {"crucible-ir 1\ntensor x : q7[1]\n", ":2: unknown dtype"},
    {"crucible-ir 1\ntensor x : f32[0]\n", "must be positive"},
    {"crucible-ir 1\ntensor x : f32[-3]\n", "must be positive"},
    {"crucible-ir 1\ntensor x : f32[1,2,3,4,5,6,7,8,9]\n", "rank above"},
    {"crucible-ir 1\ntensor x : f32[2] = [1]\n", "1 values for 2"},
    {"crucible-ir 1\ntensor x : f32[2] = [1, 2, 3]\n", "longer than expected"},
    {"crucible-ir 1\ntensor x : i8[1] = [128]\n", "out of range"},
    {"crucible-ir 1\ntensor x : i8[1] = [1.5]\n", "not an integer"},
    {"crucible-ir 1\ntensor x : binary[1] = [0]\n", "out of range"},
    {"crucible-ir 1\ntensor x : f32[1]\ntensor x : f32[1]\n", "duplicate tensor"},
    {"crucible-ir 1\ntensor x : f32[1]\nnode n : frob(x) -> (x)\n", ":3: unknown op"},
    {"crucible-ir 1\ntensor x : f32[1]\nnode n : relu(y) -> (x)\n", "unknown tensor 'y'"},
    {"crucible-ir 1\ntensor x : f32[1]\ntensor y : f32[1]\nnode n : relu(x) -> (y)\n",
     "reads tensor x"},
    {"crucible-ir 1\ntensor x : f32[1]\ntensor y : f32[1]\ntensor z : f32[1]\n"
     "node a : relu(z) -> (y)\nnode b : relu(y) -> (z)\noutputs (z)\n",
     "cycle"},
    {"crucible-ir 1\ntensor x : f32[1]\ntensor y : f32[1]\ninputs (x)\n"
     "node a : relu(x) -> (y)\nnode b : relu(x) -> (y)\noutputs (y)\n",
     "produced by both"},
    {"crucible-ir 1\ntensor x : f32[1]\ninputs (x)\n", "no outputs"},
    {"crucible-ir 1\ngraph \"abc\n", "unterminated string"},
    {"crucible-ir 1\ngraph abc def\n", "unexpected text"},
    {"crucible-ir 1\nfrobnicate\n", "unknown keyword"},
    {"crucible-ir 1\ntensor x : f32[1] quant(axis=0, scales=[0], zero_points=[0])\n",
     "positive"},
    {"crucible-ir 1\ntensor x : f32[2] quant(axis=0, scales=[1], zero_points=[0])\n",
     "1 scales for axis 0"},
    {"crucible-ir 1\ntensor x : f32[1]\ntensor y : f32[1]\ninputs (x)\n"
     "node a : relu(x) -> (y) {k=1, k=2}\noutputs (y)\n",
     "duplicate attribute"},
    {"crucible-ir 1\ntensor x : f32[1]\ninputs (x, x)\n", "listed twice"},
    {"crucible-ir 1\ntensor x : f32[1] = [1]\ninputs (x)\noutputs (x)\n",
     "both a graph input and a constant"},
    {"crucible-ir 1\ngraph \"a\\u0000\"\n", "not allowed"},
};

TEST(test_ir_text_errors)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char err[512] = "";
        cr_graph *g = parse(BAD[i].text, err, sizeof err);
        CHECK_MSG(g == NULL, "case %zu parsed but should fail", i);
        CHECK_MSG(strstr(err, BAD[i].expect) != NULL,
                  "case %zu: error '%s' lacks '%s'", i, err, BAD[i].expect);
        CHECK_MSG(strncmp(err, "test.crir", 9) == 0,
                  "case %zu: error '%s' does not name the file", i, err);
    }
    return TEST_PASS;
}

/* Every prefix and many single-byte mutations must parse or fail cleanly
 * (run under ASan/UBSan in CI). */
TEST(test_ir_text_fuzz)
{
    size_t n = strlen(FULL_TEXT);
    char *buf = malloc(n + 1);
    CHECK(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        char err[256];
        cr_graph *g = ir_parse(FULL_TEXT, cut, "t", err, sizeof err);
        ir_free(g);
    }
    uint64_t s = 88172645463325252ull;
    static const char alphabet[] = "[](){},=:->_?\"\\ \n0123456789abcdef.-+#";
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, FULL_TEXT, n + 1);
        for (int k = 0; k < 1 + it % 4; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            size_t pos = (size_t)(s % n);
            buf[pos] = (it & 1) ? alphabet[(s >> 32) % (sizeof alphabet - 1)]
                                : (char)(s >> 40);
        }
        char err[256];
        cr_graph *g = ir_parse(buf, n, "t", err, sizeof err);
        if (g) {
            jbuf b;
            jb_init(&b);
            ir_print(g, &b);
            cr_graph *g2 = ir_parse(b.s, b.len, "t2", err, sizeof err);
            CHECK_MSG(g2 != NULL, "printed text of a mutated graph does not "
                                  "parse: %s", err);
            jbuf c;
            jb_init(&c);
            ir_print(g2, &c);
            CHECK(strcmp(b.s, c.s) == 0);
            jb_free(&b);
            jb_free(&c);
            ir_free(g2);
        }
        ir_free(g);
    }
    free(buf);
    return TEST_PASS;
}

TEST(test_ir_view_subgraph)
{
    char err[512];
    const char *t = "crucible-ir 1\n"
                    "tensor x : f32[1, 4]\n"
                    "tensor w : f32[4, 4] = [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1]\n"
                    "tensor a : f32[1, 4]\n"
                    "tensor b : f32[1, 4]\n"
                    "tensor c : f32[1, 4]\n"
                    "tensor d : f32[1, 4]\n"
                    "node n0 : dense(x, w, _) -> (a)\n"
                    "node n1 : relu(a) -> (b)\n"
                    "node n2 : add(a, b) -> (c)\n"
                    "node n3 : relu(c) -> (d)\n"
                    "inputs (x)\n"
                    "outputs (d, b)\n";
    cr_graph *g = parse(t, err, sizeof err);
    CHECK_MSG(g, "%s", err);
    ir_view *v = ir_view_build(g, NULL);
    CHECK(v);
    const crucible_graph_view *gv = ir_view_graph(v);
    CHECK(gv->n_nodes == 4 && gv->n_tensors == 6);
    CHECK(gv->n_inputs == 1 && gv->n_outputs == 2);
    CHECK(gv->tensors[gv->outputs[0]]->name[0] == 'd');
    CHECK(gv->nodes[0]->inputs[2] == -1);
    CHECK(crucible_tensor_numel(gv->tensors[1]) == 16);
    CHECK(gv->tensors[1]->flags & CRUCIBLE_TENSOR_CONST);
    ir_view_free(v);
    /* subgraph {n1, n2}: reads a (boundary input), produces b (a graph
     * output) and c (read by n3 outside) */
    uint8_t mask[4] = {0, 1, 1, 0};
    v = ir_view_build(g, mask);
    CHECK(v);
    gv = ir_view_graph(v);
    CHECK(gv->n_nodes == 2);
    CHECK(gv->n_tensors == 3);
    CHECK(gv->n_inputs == 1 && !strcmp(gv->tensors[gv->inputs[0]]->name, "a"));
    CHECK(gv->n_outputs == 2);
    int has_b = 0, has_c = 0;
    for (uint32_t i = 0; i < gv->n_outputs; i++) {
        const char *nm = gv->tensors[gv->outputs[i]]->name;
        has_b |= !strcmp(nm, "b");
        has_c |= !strcmp(nm, "c");
    }
    CHECK(has_b && has_c);
    CHECK(!strcmp(g->tensors[ir_view_host_tensor(v, gv->inputs[0])].name, "a"));
    ir_view_free(v);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_ir_builder_vtable)
{
    cr_graph *g = ir_new();
    ir_builder_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.g = g;
    crucible_ir_builder b;
    ir_builder_init(&b, &ctx);
    int64_t d[2] = {1, 2};
    int32_t x = b.add_tensor(b.ctx, "x", CRUCIBLE_DT_F32, 2, d);
    int32_t y = b.add_tensor(b.ctx, "y", CRUCIBLE_DT_F32, 2, d);
    CHECK(x == 0 && y == 1);
    CHECK(b.add_tensor(b.ctx, "x", CRUCIBLE_DT_F32, 2, d) < 0);
    CHECK(strstr(ctx.err, "duplicate"));
    CHECK(b.add_tensor(b.ctx, "z", 99, 2, d) < 0);
    CHECK(b.add_node(b.ctx, "nope", "n", 1, &x, 1, &y) < 0);
    int32_t n = b.add_node(b.ctx, "relu", "n", 1, &x, 1, &y);
    CHECK(n == 0);
    CHECK(b.add_node(b.ctx, "relu", "m", 1, &x, 1, (int32_t[]){7}) < 0);
    float f[2] = {1, 2};
    CHECK(b.set_data(b.ctx, x, f, 7) < 0);
    CHECK(b.mark_input(b.ctx, x) == 0 && b.mark_output(b.ctx, y) == 0);
    char err[256];
    CHECK_MSG(ir_validate(g, err, sizeof err) == 0, "%s", err);
    ir_free(g);
    return TEST_PASS;
}

/* ----------------------------------------------------------------- CLI */

#define BIN CR_CRUCIBLE_BIN

TEST(test_cli_help_everywhere)
{
    static const char *const cmds[] = {"", "plugins", "ir", "run", "compile",
                                       "inspect", "extract", "boards",
                                       "accuracy", "conformance", "tokenize"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out = NULL;
        int rc = test_sh(&out, "'%s' %s --help", BIN, cmds[i]);
        CHECK_MSG(rc == 0 && test_contains(out, "usage: crucible"),
                  "'%s --help' rc=%d: %s", cmds[i], rc, out);
        free(out);
    }
    char *out = NULL;
    CHECK(test_sh(&out, "'%s' --version", BIN) == 0 && test_contains(out, "ABI 1."));
    free(out);
    return TEST_PASS;
}

TEST(test_cli_bad_usage)
{
    static const struct {
        const char *args;
        int rc;
        const char *msg;
    } cases[] = {
        {"--frobnicate", 2, "unknown option --frobnicate"},
        {"frob", 2, "unknown command 'frob'"},
        {"ir", 2, "missing MODEL"},
        {"ir --zzz x", 2, "unknown option --zzz"},
        {"compile x.crir", 2, "need MODEL, --target"},
        {"--plugin-dir /nonexistent/dir plugins", 1, "/nonexistent/dir"},
        {"ir /nonexistent/model.onnx", 1, "no such file"},
        {"ir /", 1, "directory"},
        {"inspect /nonexistent.tptpkg", 1, "nonexistent"},
        {"run", 2, "missing MODEL"},
        {"", 2, "usage:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int rc = test_sh(&out, "'%s' %s", BIN, cases[i].args);
        CHECK_MSG(rc == cases[i].rc && test_contains(out, cases[i].msg),
                  "'crucible %s': rc=%d (want %d), output: %s", cases[i].args,
                  rc, cases[i].rc, out);
        free(out);
    }
    return TEST_PASS;
}

TEST(test_cli_bad_model_files)
{
    const char *d = test_tmpdir();
    char p[1024];
    /* a truncated IR text: every prefix of the example is accepted or
     * refused with a message; never a crash (exit status 1, not a signal) */
    char err[256];
    size_t len;
    uint8_t *txt = cr_read_file(CR_SOURCE_DIR "/docs/examples/tiny-mlp.crir", &len,
                                0, err, sizeof err);
    CHECK(txt);
    size_t cuts[] = {0, 5, 14, 200, len / 2, len - 40, len - 4};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(p, sizeof p, "%s/trunc%zu.crir", d, i);
        FILE *f = fopen(p, "wb");
        CHECK(f);
        fwrite(txt, 1, cuts[i], f);
        fclose(f);
        char *out = NULL;
        int rc = test_sh(&out, "'%s' ir '%s'", BIN, p);
        CHECK_MSG(rc == 1, "truncated at %zu: rc=%d %s", cuts[i], rc, out);
        CHECK_MSG(test_contains(out, "crucible") && !test_contains(out, "internal error"),
                  "%s", out);
        free(out);
    }
    free(txt);
    /* binary garbage: no frontend recognises it */
    snprintf(p, sizeof p, "%s/garbage.bin", d);
    CHECK(test_write(p, "\x01\x02\x03garbage") == 0);
    char *out = NULL;
    CHECK(test_sh(&out, "'%s' ir '%s'", BIN, p) == 1);
    CHECK_MSG(test_contains(out, "no frontend recognises"), "%s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_cli_ir_roundtrip_and_json)
{
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s/docs/examples/tiny-mlp.crir' > '%s/a.crir' && "
                           "'%s' ir '%s/a.crir' > '%s/b.crir' && cmp '%s/a.crir' '%s/b.crir'",
                     BIN, CR_SOURCE_DIR, d, BIN, d, d, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' --json ir '%s/docs/examples/tiny-mlp.crir'", BIN, CR_SOURCE_DIR);
    CHECK_MSG(rc == 0 && test_contains(out, "\"nodes\":4") &&
                  test_contains(out, "\"dense\":2"), "%s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_cli_unsupported_named)
{
    const char *d = test_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/u.crir", d);
    CHECK(test_write(p, "crucible-ir 1\n"
                        "tensor x : f32[1, 4]\n"
                        "tensor y : f32[1, 4]\n"
                        "node lstm_1 : unsupported(x) -> (y) {source_op=\"onnx:LSTM\", "
                        "reason=\"recurrent ops are not lowered yet\"}\n"
                        "inputs (x)\noutputs (y)\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, p);
    CHECK_MSG(rc == 1 && test_contains(out, "node lstm_1: op onnx:LSTM: recurrent"),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

TEST(test_config_ini_errors)
{
    const char *d = test_tmpdir();
    char p[1024], err[512];
    snprintf(p, sizeof p, "%s/bad.ini", d);
    CHECK(test_write(p, "[board]\nname = x\nthis line is wrong\n") == 0);
    cr_kvdoc *kv = cr_kv_load(p, err, sizeof err);
    CHECK(kv == NULL);
    CHECK_MSG(strstr(err, "bad.ini:3:"), "%s", err);
    snprintf(p, sizeof p, "%s/dup.ini", d);
    CHECK(test_write(p, "[a]\nk = 1\nk = 2\n") == 0);
    kv = cr_kv_load(p, err, sizeof err);
    CHECK(kv == NULL && strstr(err, "duplicate key a.k"));
    snprintf(p, sizeof p, "%s/good.ini", d);
    CHECK(test_write(p, "; comment\ntop = 1\n[Board]\nname = b1\ntarget = t\n") == 0);
    kv = cr_kv_load(p, err, sizeof err);
    CHECK_MSG(kv, "%s", err);
    CHECK(!strcmp(cr_kv_get(kv, "board", "name"), "b1"));
    CHECK(!strcmp(cr_kv_get(kv, "", "top"), "1"));
    cr_kv_free(kv);
    CHECK(cr_kv_load("/nonexistent.ini", err, sizeof err) == NULL &&
          strstr(err, "cannot open"));
    /* through the CLI: --config with a syntax error names file and line */
    snprintf(p, sizeof p, "%s/bad.ini", d);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s/docs/examples/tiny-mlp.crir' --target cpu-c "
                           "--config '%s' -o '%s/x.tptpkg'",
                     BIN, CR_SOURCE_DIR, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "bad.ini:3: syntax error"), "%s", out);
    struct stat st;
    snprintf(p, sizeof p, "%s/x.tptpkg", d);
    CHECK(stat(p, &st) != 0);
    free(out);
    return TEST_PASS;
}

TEST(test_boards_bad_ini)
{
    const char *d = test_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/b", d);
    CHECK(cr_mkdirs(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/b/broken.ini", d);
    CHECK(test_write(p, "[board\nname = x\n") == 0);
    snprintf(p, sizeof p, "%s/b/notarget.ini", d);
    CHECK(test_write(p, "[board]\nname = x\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' boards --board-dir '%s/b'", BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "broken.ini:1: syntax error") &&
                  test_contains(out, "missing target"),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* Compile the bundled example through cpu-c (when built), inspect the
 * package, flip one byte, inspect again. */
TEST(test_cli_compile_inspect_flip)
{
    if (!cr_is_file(CR_BUILD_DIR "/lib/crucible/plugins/cpu-c.so"))
        SKIP("cpu-c plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s/docs/examples/tiny-mlp.crir' --target cpu-c "
                           "-o '%s/m.tptpkg'", BIN, CR_SOURCE_DIR, d);
    if (rc != 0 && test_contains(out, "SKIPPED")) {
        free(out);
        SKIP("verification tools missing");
    }
    CHECK_MSG(rc == 0, "compile rc=%d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' inspect '%s/m.tptpkg'", BIN, d);
    CHECK_MSG(rc == 0 && test_contains(out, "targets/cpu-c/"), "inspect: %s", out);
    free(out);
    rc = test_sh(&out, "'%s' --json inspect '%s/m.tptpkg'", BIN, d);
    CHECK_MSG(rc == 0 && test_contains(out, "\"ok\":true"), "%s", out);
    free(out);
    /* flip one byte in the middle of the file */
    char p[1024];
    snprintf(p, sizeof p, "%s/m.tptpkg", d);
    size_t len;
    char err[256];
    uint8_t *pkg = cr_read_file(p, &len, 0, err, sizeof err);
    CHECK(pkg && len > 100);
    int named = 0;
    size_t offs[] = {len / 3, len / 2, 40, len - 30};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        pkg[offs[i]] ^= 0x20;
        snprintf(p, sizeof p, "%s/flip%zu.tptpkg", d, i);
        FILE *f = fopen(p, "wb");
        CHECK(f);
        fwrite(pkg, 1, len, f);
        fclose(f);
        pkg[offs[i]] ^= 0x20;
        rc = test_sh(&out, "'%s' inspect '%s'", BIN, p);
        CHECK_MSG(rc == 1, "flipped byte %zu: inspect rc=%d: %s", offs[i], rc, out);
        if (test_contains(out, "BAD ")) named = 1;
        free(out);
    }
    CHECK_MSG(named, "no flipped byte was reported as a BAD entry");
    free(pkg);
    /* extract works on the good one and refuses to overwrite */
    rc = test_sh(&out, "'%s' extract '%s/m.tptpkg' '%s/ex' && test -f '%s/ex/ir.txt' && "
                       "test -f '%s/ex/manifest.json'", BIN, d, d, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_cli_compile_failures_leave_no_package)
{
    if (!cr_is_file(CR_BUILD_DIR "/lib/crucible/plugins/cpu-c.so"))
        SKIP("cpu-c plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL;
    /* an op the target refuses: pre-flight names node, op and reason */
    char p[1024];
    snprintf(p, sizeof p, "%s/q.crir", d);
    CHECK(test_write(p, "crucible-ir 1\n"
                        "tensor x : f32[1, 4]\n"
                        "tensor y : i8[1, 4] quant(axis=-1, scales=[0.5], zero_points=[0])\n"
                        "node quant_1 : quantize(x) -> (y)\n"
                        "inputs (x)\noutputs (y)\n") == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target cpu-c -o '%s/q.tptpkg'", BIN, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "quant_1") && test_contains(out, "pre-flight"),
              "rc=%d %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' compile '%s/docs/examples/tiny-mlp.crir' --target no-such-target "
                       "-o '%s/n.tptpkg'", BIN, CR_SOURCE_DIR, d);
    CHECK_MSG(rc == 1 && test_contains(out, "no loaded target plugin 'no-such-target'"),
              "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' compile '%s/docs/examples/tiny-mlp.crir' --target cpu-c "
                       "--board no-such-board -o '%s/n.tptpkg'", BIN, CR_SOURCE_DIR, d);
    CHECK_MSG(rc == 1 && test_contains(out, "no board 'no-such-board'"), "%s", out);
    free(out);
    rc = test_sh(&out, "ls -A '%s' | grep -c tptpkg", d);
    CHECK_MSG(test_contains(out, "0"), "packages left behind: %s", out);
    free(out);
    return TEST_PASS;
}
