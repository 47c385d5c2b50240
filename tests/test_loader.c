/* test_loader.c - the plugin loader and the ABI rules, tested with real
 * shared objects: the deliberately broken plugins of tests/plugins/ (one
 * source, test_plugin.c, says what each is for), the `crucible plugins`
 * command, discovery order, a plugin that crashes, and an out-of-tree
 * plugin built against the installed SDK alone (tests/run-oot.sh).
 *
 * The table k_expect is the loader's contract for each failure; the same
 * table is in docs/writing-plugins.md ("What the loader says"). */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "loader.h"
#include "runner.h"

#define TEST_ENTRY(name) int name(void);
#include "list-loader.h"
#undef TEST_ENTRY

#define CR_TEST_CRASH_PLUGIN_DIR CR_BUILD_DIR "/tests/plugins-crash"

/* ---- what the loader must say about each test plugin -------------------*/

typedef struct expect {
    const char *file;      /* in CR_TEST_PLUGIN_DIR */
    const char *id;        /* expected id, or NULL: not checked */
    int status;            /* cr_plugin_status */
    const char *words[4];  /* each must appear in the reason */
} expect;

/* In directory (name) order, which is also the order the loader uses. */
static const expect k_expect[] = {
    {"bad_init_fails.so", "test-init-fails", CR_PLUGIN_REFUSED,
     {"init failed", "status -1"}},
    {"bad_invalid_id.so", NULL, CR_PLUGIN_REFUSED, {"invalid id"}},
    {"bad_no_entry.so", NULL, CR_PLUGIN_REFUSED,
     {"no exported symbol", "crucible_plugin_entry"}},
    {"bad_null_query.so", "test-null-query", CR_PLUGIN_REFUSED,
     {"target interface", "query", "slot"}},
    {"bad_undefined_symbol.so", NULL, CR_PLUGIN_REFUSED,
     {"cannot load", "undefined symbol", "crucible_host_log_direct"}},
    {"bad_wrong_major.so", NULL, CR_PLUGIN_REFUSED,
     {"ABI 2.", "host ABI 1.", "major"}},
    {"bad_wrong_tag.so", NULL, CR_PLUGIN_REFUSED,
     {"tag", "sizeof(void*)=4", "32/64-bit"}},
    {"dup_first.so", "test-dup", CR_PLUGIN_LOADED, {NULL}},
    {"dup_second.so", "test-dup", CR_PLUGIN_DUPLICATE,
     {"duplicate id test-dup", "dup_first.so"}},
    {"good_target.so", "test-good", CR_PLUGIN_LOADED, {NULL}},
    {"newer_minor.so", "test-newer-minor", CR_PLUGIN_LOADED,
     {"newer ABI minor", "1.1"}},
    {"older_minor.so", "test-older-minor", CR_PLUGIN_LOADED, {NULL}},
};
#define N_EXPECT (sizeof k_expect / sizeof k_expect[0])

static const char *status_word(int s)
{
    return s == CR_PLUGIN_LOADED ? "loaded"
           : s == CR_PLUGIN_DUPLICATE ? "duplicate" : "refused";
}

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p;
}

static int plugins_built(void)
{
    return access(CR_TEST_PLUGIN_DIR "/good_target.so", R_OK) == 0 &&
           access(CR_CRUCIBLE_BIN, X_OK) == 0;
}
#define NEED_PLUGINS()                                                      \
    CHECK_MSG(plugins_built(),                                              \
              "%s/good_target.so or %s missing: build the tests/plugins "   \
              "targets and the host first", CR_TEST_PLUGIN_DIR,             \
              CR_CRUCIBLE_BIN)

/* Checks one loader record against its expectation; prints why not. */
static int matches(const cr_plugin *p, const expect *e)
{
    if (!p) {
        fprintf(stderr, "    %s: no record\n", e->file);
        return 0;
    }
    if (p->status != e->status) {
        fprintf(stderr, "    %s: status %s, expected %s (reason: %s)\n",
                e->file, status_word(p->status), status_word(e->status),
                p->reason);
        return 0;
    }
    if (e->id && (!p->id || strcmp(p->id, e->id))) {
        fprintf(stderr, "    %s: id %s, expected %s\n", e->file,
                p->id ? p->id : "(null)", e->id);
        return 0;
    }
    for (size_t w = 0; w < 4 && e->words[w]; w++)
        if (!strstr(p->reason, e->words[w])) {
            fprintf(stderr, "    %s: reason \"%s\" lacks \"%s\"\n", e->file,
                    p->reason, e->words[w]);
            return 0;
        }
    return 1;
}

/* ---- in-process: cr_loader_load_file --------------------------------- */

TEST(test_loader_verdicts)
{
    NEED_PLUGINS();
    cr_loader L;
    cr_loader_init(&L, -1);
    int ok = 1;
    for (size_t i = 0; i < N_EXPECT; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CR_TEST_PLUGIN_DIR,
                 k_expect[i].file);
        cr_plugin *p = cr_loader_load_file(&L, path);
        if (!matches(p, &k_expect[i])) ok = 0;
        /* A refused or duplicate plugin keeps no handle and no state. */
        if (p && p->status != CR_PLUGIN_LOADED && (p->dl || p->inited)) {
            fprintf(stderr, "    %s: refused but still open/initialised\n",
                    k_expect[i].file);
            ok = 0;
        }
        if (p && p->status == CR_PLUGIN_LOADED &&
            (!p->dl || !p->inited || !p->has_target || !p->target.query ||
             !p->target.compile)) {
            fprintf(stderr, "    %s: loaded but incomplete\n",
                    k_expect[i].file);
            ok = 0;
        }
    }
    CHECK(L.n == N_EXPECT);
    CHECK(cr_loader_find(&L, "test-good", "target") != NULL);
    CHECK(cr_loader_find(&L, "test-good", "frontend") == NULL);
    CHECK(cr_loader_find(&L, "test-init-fails", NULL) == NULL);
    /* The duplicate's id resolves to the first file. */
    cr_plugin *dup = cr_loader_find(&L, "test-dup", NULL);
    CHECK(dup && !strcmp(base_name(dup->path), "dup_first.so"));
    cr_loader_free(&L);
    CHECK(L.n == 0 && L.plugins == NULL);
    /* Freeing an empty (or already freed) loader is harmless. */
    cr_loader_free(&L);
    return ok ? TEST_PASS : TEST_FAIL;
}

TEST(test_abi_older_minor_zero_extended)
{
    NEED_PLUGINS();
    cr_loader L;
    cr_loader_init(&L, -1);
    cr_plugin *p =
        cr_loader_load_file(&L, CR_TEST_PLUGIN_DIR "/older_minor.so");
    CHECK(p && p->status == CR_PLUGIN_LOADED);
    CHECK(p->has_target);
    /* The plugin's vtable ends before verify: the host's copy has the
     * size the plugin wrote and NULL (= unsupported) for verify, although
     * the plugin's struct happens to hold a pointer past its hdr.size. */
    CHECK(p->target.hdr.size == offsetof(crucible_target, verify));
    CHECK(p->target.verify == NULL);
    CHECK(p->target.accept_board != NULL);
    CHECK(p->target.query != NULL && p->target.compile != NULL);
    CHECK(p->target.description &&
          !strcmp(p->target.description, "test target"));
    CHECK(p->reason[0] == 0);
    /* A complete vtable keeps verify. */
    cr_plugin *g =
        cr_loader_load_file(&L, CR_TEST_PLUGIN_DIR "/good_target.so");
    CHECK(g && g->status == CR_PLUGIN_LOADED && g->target.verify != NULL);
    cr_loader_free(&L);
    return TEST_PASS;
}

TEST(test_abi_newer_minor_loads)
{
    NEED_PLUGINS();
    cr_loader L;
    cr_loader_init(&L, -1);
    cr_plugin *p =
        cr_loader_load_file(&L, CR_TEST_PLUGIN_DIR "/newer_minor.so");
    CHECK(p && p->status == CR_PLUGIN_LOADED);
    CHECK(p->abi_major == CRUCIBLE_ABI_MAJOR);
    CHECK(p->abi_minor == CRUCIBLE_ABI_MINOR + 1);
    /* Larger than this host's struct: only the known prefix was copied. */
    CHECK(p->entry_size > sizeof(crucible_plugin_entry));
    CHECK(p->entry.get_interface != NULL && p->entry.init != NULL);
    CHECK(p->target.hdr.size > sizeof(crucible_target));
    CHECK(p->target.verify != NULL);
    CHECK_MSG(strstr(p->reason, "newer ABI minor"), "reason: %s", p->reason);
    cr_loader_free(&L);
    return TEST_PASS;
}

/* In-process entries go through the same validation (built-ins). */
static const char *const k_no_ifaces[] = {"com.example.nothing/1", NULL};
static const void *nothing_get_interface(void *state, const char *id)
{
    (void)state;
    (void)id;
    return NULL;
}
static const crucible_plugin_entry k_builtin_ok = {
    CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0,
    "test-good", "in-process", "1.0", NULL, NULL, k_no_ifaces, NULL, NULL,
    nothing_get_interface};
static const crucible_plugin_entry k_builtin_major = {
    {sizeof(crucible_plugin_entry), CRUCIBLE_ABI_MAJOR + 1, 0},
    CRUCIBLE_ABI_TAG, 0, "test-major", "in-process", "1.0", NULL, NULL,
    k_no_ifaces, NULL, NULL, nothing_get_interface};
static const crucible_plugin_entry k_builtin_noversion = {
    CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0,
    "test-noversion", NULL, NULL, NULL, NULL, k_no_ifaces, NULL, NULL,
    nothing_get_interface};
static const char *const k_unknown_ifaces[] = {"crucible.teleporter/1",
                                               NULL};
static const crucible_plugin_entry k_builtin_unknown_iface = {
    CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0,
    "test-unknown-iface", NULL, "1.0", NULL, NULL, k_unknown_ifaces, NULL,
    NULL, nothing_get_interface};

TEST(test_loader_builtin_and_first_wins)
{
    NEED_PLUGINS();
    cr_loader L;
    cr_loader_init(&L, -1);
    cr_plugin *b = cr_loader_add_builtin(&L, &k_builtin_ok);
    CHECK(b && b->status == CR_PLUGIN_LOADED);
    CHECK(!strcmp(b->kinds, "extension"));
    CHECK(!strcmp(b->path, "(built-in)"));
    cr_plugin *m = cr_loader_add_builtin(&L, &k_builtin_major);
    CHECK(m && m->status == CR_PLUGIN_REFUSED);
    CHECK_MSG(strstr(m->reason, "ABI 2.") && strstr(m->reason, "host ABI 1."),
              "reason: %s", m->reason);
    cr_plugin *v = cr_loader_add_builtin(&L, &k_builtin_noversion);
    CHECK(v && v->status == CR_PLUGIN_REFUSED &&
          strstr(v->reason, "version"));
    cr_plugin *u = cr_loader_add_builtin(&L, &k_builtin_unknown_iface);
    CHECK(u && u->status == CR_PLUGIN_REFUSED &&
          strstr(u->reason, "crucible.teleporter/1"));
    /* A file with an id already taken (here by a built-in) is a duplicate
     * naming the first provider; its init never runs. */
    cr_plugin *f =
        cr_loader_load_file(&L, CR_TEST_PLUGIN_DIR "/good_target.so");
    CHECK(f && f->status == CR_PLUGIN_DUPLICATE);
    CHECK_MSG(strstr(f->reason, "(built-in)"), "reason: %s", f->reason);
    CHECK(!f->inited && !f->dl);
    CHECK(cr_loader_find(&L, "test-good", NULL) == b);
    cr_loader_free(&L);
    return TEST_PASS;
}

/* ---- the `crucible` command -------------------------------------------*/

/* Runs a shell command (printf-style) that ends in `crucible ... plugins
 * --json`; parses its stdout. The child's stderr is discarded. The exit
 * status goes to *exit_code; with exit_code NULL it must be 0. Returns the
 * root (jv_free it) or NULL after printing why. */
static jv *plugins_json(int *exit_code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static jv *plugins_json(int *exit_code, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = test_sh(&out, "%s 2>/dev/null", cmd);
    if (exit_code) *exit_code = rc;
    if (!exit_code && rc != 0) {
        fprintf(stderr, "    %s\n    -> exit %d, expected 0\n", cmd, rc);
        free(out);
        return NULL;
    }
    char err[256];
    jv *root = out ? jv_parse(out, strlen(out), err, sizeof err) : NULL;
    if (!root)
        fprintf(stderr, "    %s\n    -> exit %d, output not JSON (%s):\n%s\n",
                cmd, rc, out ? err : "no output", out ? out : "");
    free(out);
    return root;
}

/* The record whose path ends in /file (or is "(built-in)" with that id). */
static const jv *by_file(const jv *root, const char *file)
{
    const jv *arr = jv_get(root, "plugins");
    for (size_t i = 0; i < jv_len(arr); i++) {
        const char *path = jv_str(jv_get(jv_at(arr, i), "path"));
        if (path && !strcmp(base_name(path), file)) return jv_at(arr, i);
    }
    return NULL;
}

static const jv *by_id(const jv *root, const char *id)
{
    const jv *arr = jv_get(root, "plugins");
    for (size_t i = 0; i < jv_len(arr); i++) {
        const char *s = jv_str(jv_get(jv_at(arr, i), "id"));
        if (s && !strcmp(s, id)) return jv_at(arr, i);
    }
    return NULL;
}

static int has_status(const jv *rec, const char *status)
{
    const char *s = jv_str(jv_get(rec, "status"));
    return s && !strcmp(s, status);
}

/* A new empty directory (test_tmpdir's buffer is reused by each call). */
static const char *fresh_dir(char *buf, size_t len)
{
    snprintf(buf, len, "%s", test_tmpdir());
    return buf;
}

/* Environment for every child: no CRUCIBLE_PLUGIN_PATH from the caller and
 * an empty user plugin directory, so only the directories a test names
 * (and the build's system directory) are searched. */
static const char *clean_env(void)
{
    static char env[1200];
    if (!env[0]) {
        char t[700];
        snprintf(env, sizeof env,
                 "env -u CRUCIBLE_PLUGIN_PATH XDG_DATA_HOME='%s/xdg'",
                 fresh_dir(t, sizeof t));
    }
    return env;
}

TEST(test_loader_cli_plugins_json)
{
    NEED_PLUGINS();
    int rc = -1;
    jv *root = plugins_json(&rc, "%s '%s' --plugin-dir '%s' plugins --json",
                            clean_env(), CR_CRUCIBLE_BIN, CR_TEST_PLUGIN_DIR);
    CHECK(root);
    int ok = rc == 0;
    if (!ok) fprintf(stderr, "    exit status %d, expected 0\n", rc);
    char want_abi[16];
    snprintf(want_abi, sizeof want_abi, "%d.%d", CRUCIBLE_ABI_MAJOR,
             CRUCIBLE_ABI_MINOR);
    const char *host_abi = jv_str(jv_get(root, "host_abi"));
    if (!host_abi || strcmp(host_abi, want_abi)) {
        fprintf(stderr, "    host_abi %s, expected %s\n",
                host_abi ? host_abi : "(none)", want_abi);
        ok = 0;
    }
    /* Built-ins: irtext always; cpu-c only if the system directory has it. */
    const jv *irt = by_id(root, "irtext");
    if (!irt || !has_status(irt, "loaded") ||
        strcmp(jv_str(jv_get(irt, "path")) ? jv_str(jv_get(irt, "path")) : "",
               "(built-in)")) {
        fprintf(stderr, "    irtext is not listed as a loaded built-in\n");
        ok = 0;
    }
    const jv *cpu = by_id(root, "cpu-c");
    if (cpu && !has_status(cpu, "loaded")) {
        fprintf(stderr, "    cpu-c is listed but not loaded: %s\n",
                jv_str(jv_get(cpu, "reason")));
        ok = 0;
    }
    for (size_t i = 0; i < N_EXPECT; i++) {
        const expect *e = &k_expect[i];
        const jv *r = by_file(root, e->file);
        const char *reason = jv_str(jv_get(r, "reason"));
        const char *id = jv_str(jv_get(r, "id"));
        if (!r) {
            fprintf(stderr, "    %s is not listed\n", e->file);
            ok = 0;
            continue;
        }
        if (!has_status(r, status_word(e->status))) {
            fprintf(stderr, "    %s: status %s, expected %s\n", e->file,
                    jv_str(jv_get(r, "status")), status_word(e->status));
            ok = 0;
        }
        if (e->id && (!id || strcmp(id, e->id))) {
            fprintf(stderr, "    %s: id %s, expected %s\n", e->file,
                    id ? id : "null", e->id);
            ok = 0;
        }
        for (size_t w = 0; w < 4 && e->words[w]; w++)
            if (!reason || !strstr(reason, e->words[w])) {
                fprintf(stderr, "    %s: reason \"%s\" lacks \"%s\"\n",
                        e->file, reason ? reason : "null", e->words[w]);
                ok = 0;
            }
        if (e->status == CR_PLUGIN_LOADED &&
            strcmp(jv_str(jv_get(r, "kind")) ? jv_str(jv_get(r, "kind")) : "",
                   "target")) {
            fprintf(stderr, "    %s: kind is not \"target\"\n", e->file);
            ok = 0;
        }
    }
    /* The crashing plugin is elsewhere and must not be picked up. */
    if (by_id(root, "test-crash")) {
        fprintf(stderr, "    test-crash was loaded from the wrong directory\n");
        ok = 0;
    }
    jv_free(root);
    return ok ? TEST_PASS : TEST_FAIL;
}

TEST(test_loader_cli_missing_plugin_dir)
{
    NEED_PLUGINS();
    char *out = NULL;
    int rc = test_sh(&out, "%s '%s' --plugin-dir /nonexistent/crucible-xyz "
                           "plugins --json",
                     clean_env(), CR_CRUCIBLE_BIN);
    int ok = rc != 0 && test_contains(out, "/nonexistent/crucible-xyz");
    if (!ok) fprintf(stderr, "    exit %d, output:\n%s\n", rc, out);
    free(out);
    return ok ? TEST_PASS : TEST_FAIL;
}

static const char k_tiny_model[] =
    "crucible-ir 1\n"
    "graph tiny\n"
    "tensor x : f32[1, 3]\n"
    "tensor w : f32[2, 3] = [0.5, -1, 2, 1, 1, 1]\n"
    "tensor y : f32[1, 2]\n"
    "node fc : dense(x, w, _) -> (y)\n"
    "inputs (x)\n"
    "outputs (y)\n";

/* Number of entries (other than . and ..) in dir, or -1. */
static int dir_entries(const char *dir, char *names, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    if (len) names[0] = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        size_t l = strlen(names);
        if (len > l) snprintf(names + l, len - l, " %s", de->d_name);
    }
    closedir(d);
    return n;
}

TEST(test_loader_crash_in_plugin)
{
    NEED_PLUGINS();
    CHECK_MSG(access(CR_TEST_CRASH_PLUGIN_DIR "/crash_query.so", R_OK) == 0,
              "%s/crash_query.so missing", CR_TEST_CRASH_PLUGIN_DIR);
    char t[700];
    fresh_dir(t, sizeof t);
    char model[1024], outdir[1024], tmp[1024], names[1024];
    snprintf(model, sizeof model, "%s/m.crir", t);
    snprintf(outdir, sizeof outdir, "%s/out", t);
    snprintf(tmp, sizeof tmp, "%s/tmp", t);
    CHECK(test_write(model, k_tiny_model) == 0);
    CHECK(test_sh(NULL, "mkdir -p '%s' '%s'", outdir, tmp) == 0);

    /* Control: the same model and command with a well-behaved target. */
    char *out = NULL;
    int rc = test_sh(&out, "cd '%s' && %s TMPDIR='%s' '%s' --plugin-dir '%s' "
                           "compile m.crir --target test-good -o "
                           "out/good.tptpkg",
                     t, clean_env(), tmp, CR_CRUCIBLE_BIN, CR_TEST_PLUGIN_DIR);
    int ok = rc == 0;
    if (!ok) fprintf(stderr, "    control compile: exit %d:\n%s\n", rc, out);
    free(out);
    CHECK(ok);
    CHECK(test_sh(NULL, "rm -f '%s/good.tptpkg'", outdir) == 0);

    /* The crash. No core file. ASan (in a CRUCIBLE_SANITIZE build) lets a
     * program install its own SIGSEGV handler by default; handle_segv=0
     * makes sure its handler cannot preempt the host's, which names the
     * plugin and removes the temporary package. "; exit $?" keeps the
     * shell's own "Segmentation fault" line in the captured output. */
    out = NULL;
    rc = test_sh(&out, "ulimit -c 0; cd '%s' && %s TMPDIR='%s' "
                       "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}"
                       "handle_segv=0\" '%s' --plugin-dir '%s' compile m.crir "
                       "--target test-crash -o out/OUT.tptpkg; exit $?",
                 t, clean_env(), tmp, CR_CRUCIBLE_BIN,
                 CR_TEST_CRASH_PLUGIN_DIR);
    ok = rc != 0 && test_contains(out, "test-crash") &&
         test_contains(out, "crashed") && test_contains(out, "query");
    if (!ok) fprintf(stderr, "    crash compile: exit %d:\n%s\n", rc, out);
    free(out);
    CHECK(ok);
    /* Neither OUT.tptpkg nor any OUT.tptpkg.tmp.* is left behind. */
    int n = dir_entries(outdir, names, sizeof names);
    CHECK_MSG(n == 0, "left in %s:%s", outdir, names);
    n = dir_entries(tmp, names, sizeof names);
    CHECK_MSG(n == 0, "left in TMPDIR %s:%s", tmp, names);
    return TEST_PASS;
}

/* Copies the good plugin to dir/name. */
static int put_good(const char *dir, const char *name)
{
    return test_sh(NULL, "mkdir -p '%s' && cp '%s/good_target.so' '%s/%s'",
                   dir, CR_TEST_PLUGIN_DIR, dir, name);
}

/* Status of the record whose file is `file`, or "absent". */
static const char *file_status(const jv *root, const char *file)
{
    const char *s = jv_str(jv_get(by_file(root, file), "status"));
    return s ? s : "absent";
}

#define EXPECT_STATUS(root, file, want)                                     \
    CHECK_MSG(!strcmp(file_status(root, file), want), "%s is %s, not %s",   \
              file, file_status(root, file), want)

TEST(test_loader_discovery_order)
{
    NEED_PLUGINS();
    char t[700];
    fresh_dir(t, sizeof t);
    char a[1024], b[1024], x[1024], xp[1100];
    snprintf(a, sizeof a, "%s/A", t);
    snprintf(b, sizeof b, "%s/B", t);
    snprintf(x, sizeof x, "%s/X", t);
    snprintf(xp, sizeof xp, "%s/crucible/plugins", x);
    /* The same plugin (id test-good) under a different name in each. */
    CHECK(put_good(a, "alpha.so") == 0);
    CHECK(put_good(b, "beta.so") == 0);
    CHECK(put_good(xp, "gamma.so") == 0);
    const char *bin = CR_CRUCIBLE_BIN;
    const char *env = clean_env();
    jv *r;

    /* --plugin-dir in the order given. */
    r = plugins_json(NULL, "%s '%s' --plugin-dir '%s' --plugin-dir '%s' "
                           "plugins --json", env, bin, a, b);
    CHECK(r);
    EXPECT_STATUS(r, "alpha.so", "loaded");
    EXPECT_STATUS(r, "beta.so", "duplicate");
    CHECK(test_contains(jv_str(jv_get(by_file(r, "beta.so"), "reason")),
                        "alpha.so"));
    jv_free(r);
    r = plugins_json(NULL, "%s '%s' --plugin-dir '%s' --plugin-dir '%s' "
                           "plugins --json", env, bin, b, a);
    CHECK(r);
    EXPECT_STATUS(r, "beta.so", "loaded");
    EXPECT_STATUS(r, "alpha.so", "duplicate");
    jv_free(r);

    /* --plugin-dir before CRUCIBLE_PLUGIN_PATH. */
    r = plugins_json(NULL, "%s CRUCIBLE_PLUGIN_PATH='%s' '%s' --plugin-dir "
                           "'%s' plugins --json", env, b, bin, a);
    CHECK(r);
    EXPECT_STATUS(r, "alpha.so", "loaded");
    EXPECT_STATUS(r, "beta.so", "duplicate");
    jv_free(r);

    /* CRUCIBLE_PLUGIN_PATH before the user directory; empty and missing
     * entries are skipped. */
    r = plugins_json(NULL, "%s CRUCIBLE_PLUGIN_PATH=':/nonexistent/dir:%s' "
                           "XDG_DATA_HOME='%s' '%s' plugins --json",
                     env, b, x, bin);
    CHECK(r);
    EXPECT_STATUS(r, "beta.so", "loaded");
    EXPECT_STATUS(r, "gamma.so", "duplicate");
    jv_free(r);

    /* The user directory ($XDG_DATA_HOME/crucible/plugins) on its own. */
    r = plugins_json(NULL, "%s XDG_DATA_HOME='%s' '%s' plugins --json", env,
                     x, bin);
    CHECK(r);
    EXPECT_STATUS(r, "gamma.so", "loaded");
    jv_free(r);

    /* Relative entries in CRUCIBLE_PLUGIN_PATH are ignored. */
    r = plugins_json(NULL, "cd '%s' && %s CRUCIBLE_PLUGIN_PATH='B:./A' '%s' "
                           "plugins --json", t, env, bin);
    CHECK(r);
    EXPECT_STATUS(r, "alpha.so", "absent");
    EXPECT_STATUS(r, "beta.so", "absent");
    CHECK(by_id(r, "test-good") == NULL);
    jv_free(r);

    /* The current directory is never searched. */
    r = plugins_json(NULL, "cd '%s' && %s '%s' plugins --json", a, env, bin);
    CHECK(r);
    EXPECT_STATUS(r, "alpha.so", "absent");
    CHECK(by_id(r, "test-good") == NULL);
    CHECK(by_id(r, "irtext") != NULL);
    jv_free(r);
    return TEST_PASS;
}

/* ---- out of tree --------------------------------------------------------*/

TEST(test_abi_out_of_tree)
{
    NEED_PLUGINS();
    static const char *const tools[] = {"cmake", "pkg-config", "make", "cc"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (test_sh(NULL, "command -v %s", tools[i]) != 0)
            SKIP("%s not found: the out-of-tree plugin build needs cmake, "
                 "pkg-config, make and cc", tools[i]);
    char *out = NULL;
    int rc = test_sh(&out, "%s sh '%s/tests/run-oot.sh' '%s'", clean_env(),
                     CR_SOURCE_DIR, CR_BUILD_DIR);
    if (rc != 0) fprintf(stderr, "    tests/run-oot.sh: exit %d:\n%s\n", rc, out);
    else if (test_contains(out, "NOTE:")) {
        /* Passed with a workaround the script names: show it. */
        const char *n = strstr(out, "NOTE:");
        fprintf(stderr, "    run-oot.sh %.*s\n", (int)strcspn(n, "\n"), n);
    }
    free(out);
    CHECK(rc == 0);
    return TEST_PASS;
}
