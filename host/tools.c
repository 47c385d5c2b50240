/*
 * tools.c - host services: running external tools (PATH lookup, timeout,
 * captured output, version recorded for the manifest, SKIPPED with the
 * Debian package when absent) and progress reports.
 */
#include "loader.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_CAP (1u << 20)

typedef struct tool_rec {
    char *name, *path, *version;
} tool_rec;
static tool_rec *g_tools;
static size_t g_ntools, g_captools;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *find_on_path(const char *name)
{
    for (size_t i = 0; i < g_ntools; i++)
        if (!strcmp(g_tools[i].name, name)) return g_tools[i].path;
    char *found = NULL;
    if (strchr(name, '/')) {
        if (access(name, X_OK) == 0) found = cr_strdup(name);
    } else {
        const char *path = getenv("PATH");
        char *copy = cr_strdup(path && *path ? path : "/usr/bin:/bin");
        char *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
             d = strtok_r(NULL, ":", &save)) {
            if (d[0] != '/') continue; /* never the current directory */
            char *c = cr_path_join(d, name);
            if (c && access(c, X_OK) == 0 && cr_is_file(c))
                found = c;
            else
                cr_free(c);
        }
        cr_free(copy);
    }
    if (cr_grow((void **)&g_tools, &g_captools, g_ntools + 1, sizeof(tool_rec)))
        return found; /* leaks only on OOM */
    g_tools[g_ntools].name = cr_strdup(name);
    g_tools[g_ntools].path = found;
    g_tools[g_ntools].version = NULL;
    g_ntools++;
    return found;
}

static const char *svc_find(const crucible_host *h, const char *name)
{
    (void)h;
    return name ? find_on_path(name) : NULL;
}

/* Runs argv with output captured; the core of both run() and versions. */
static int spawn_capture(const char *path, const char *const *argv,
                         const char *cwd, const char *stdin_path,
                         double timeout_s, int *exit_code, jbuf *out,
                         int *timed_out)
{
    int pfd[2];
    *timed_out = 0;
    *exit_code = -1;
    if (pipe(pfd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        if (cwd && chdir(cwd) != 0) _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    double t0 = now_s();
    int killed = 0;
    for (;;) {
        double left = timeout_s - (now_s() - t0);
        if (left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            *timed_out = 1;
            killed = 1;
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        int ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[8192];
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        jb_putn(out, buf, (size_t)n);
        if (out->len > 2 * OUTPUT_CAP) {
            /* keep the tail */
            size_t drop = out->len - OUTPUT_CAP;
            memmove(out->s, out->s + drop, out->len - drop + 1);
            out->len -= drop;
        }
    }
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!killed) {
        if (WIFEXITED(st))
            *exit_code = WEXITSTATUS(st);
        else if (WIFSIGNALED(st))
            *exit_code = 128 + WTERMSIG(st);
    }
    return 0;
}

static void record_version(const char *name, const char *path,
                           const char *varg)
{
    tool_rec *t = NULL;
    for (size_t i = 0; i < g_ntools; i++)
        if (!strcmp(g_tools[i].name, name)) t = &g_tools[i];
    if (!t || t->version || !varg) return;
    const char *argv[] = {path, varg, NULL};
    jbuf out;
    jb_init(&out);
    int code, to;
    if (spawn_capture(path, argv, NULL, NULL, 20.0, &code, &out, &to) == 0 &&
        out.s) {
        /* the first line that says something: has a letter and a digit
         * (ngspice starts with a row of asterisks) */
        char *line = out.s, *pick = NULL;
        while (line && *line && !pick) {
            char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            int alpha = 0, digit = 0;
            for (size_t i = 0; i < n; i++) {
                if (isalpha((unsigned char)line[i])) alpha = 1;
                if (isdigit((unsigned char)line[i])) digit = 1;
            }
            if (alpha && digit) {
                while (n && (line[0] == '*' || line[0] == ' ')) line++, n--;
                while (n && (line[n - 1] == '*' || line[n - 1] == ' ' || line[n - 1] == '\r')) n--;
                pick = cr_strndup(line, n < 200 ? n : 200);
            }
            line = nl ? nl + 1 : NULL;
        }
        t->version = pick;
    }
    jb_free(&out);
    if (!t->version) t->version = cr_strdup("unknown");
}

static int svc_run(const crucible_host *h, const crucible_tool_request *req,
                   crucible_tool_result *res)
{
    (void)h;
    crucible_tool_result r;
    memset(&r, 0, sizeof r);
    r.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    r.exit_code = -1;
    if (!req || !req->argv || !req->argv[0]) {
        r.status = CRUCIBLE_E_INVALID;
        goto done;
    }
    const char *name = req->argv[0];
    const char *path = find_on_path(name);
    jbuf out;
    jb_init(&out);
    if (!path) {
        if (req->debian_package)
            jb_printf(&out, "%s not found (install %s)", name,
                      req->debian_package);
        else
            jb_printf(&out, "%s not found on PATH", name);
        r.status = CRUCIBLE_E_SKIPPED;
    } else {
        /* default: "--version" for tools found on PATH; a program given by
         * path (e.g. a binary the plugin just built) is not a tool */
        record_version(name, path,
                       req->version_arg ? (req->version_arg[0] ? req->version_arg : NULL)
                       : strchr(name, '/') ? NULL : "--version");
        double t0 = now_s();
        int code, to;
        double tmo = req->timeout_s > 0 ? req->timeout_s : 600.0;
        if (spawn_capture(path, req->argv, req->cwd, req->stdin_path, tmo,
                          &code, &out, &to) != 0) {
            jb_printf(&out, "cannot start %s: %s", name, strerror(errno));
            r.status = CRUCIBLE_E_TOOL;
        } else if (to) {
            jb_printf(&out, "\n%s timed out after %.0f s", name, tmo);
            r.status = CRUCIBLE_E_TIMEOUT;
        } else {
            r.exit_code = code;
            if (code == 127 || code == 126)
                jb_printf(&out, "\n%s could not be executed", name);
            r.status = code == 0 ? CRUCIBLE_OK : CRUCIBLE_E_TOOL;
        }
        r.seconds = now_s() - t0;
    }
    r.output = jb_take(&out);
    r.output_len = r.output ? strlen(r.output) : 0;
done:
    if (res) {
        uint32_t sz = res->hdr.size ? res->hdr.size : sizeof r;
        memcpy(res, &r, sz < sizeof r ? sz : sizeof r);
    } else {
        cr_free(r.output);
    }
    return r.status;
}

static void svc_free_result(const crucible_host *h, crucible_tool_result *res)
{
    (void)h;
    if (!res) return;
    cr_free(res->output);
    res->output = NULL;
    res->output_len = 0;
}

static const crucible_host_tools g_tools_iface = {
    CRUCIBLE_HEADER(crucible_host_tools), svc_run, svc_free_result, svc_find};

const crucible_host_tools *cr_host_tools(void) { return &g_tools_iface; }

void cr_tools_versions_json(jbuf *out)
{
    jb_putc(out, '[');
    int first = 1;
    for (size_t i = 0; i < g_ntools; i++) {
        if (!g_tools[i].path || !g_tools[i].version) continue;
        jb_puts(out, first ? "" : ",");
        first = 0;
        jb_puts(out, "{\"name\":");
        jb_jstr(out, g_tools[i].name);
        jb_puts(out, ",\"path\":");
        jb_jstr(out, g_tools[i].path);
        jb_puts(out, ",\"version\":");
        jb_jstr(out, g_tools[i].version);
        jb_putc(out, '}');
    }
    jb_putc(out, ']');
}

/* ---------------------------------------------------------------- progress */

static void svc_progress(const crucible_host *h, const char *step,
                         double fraction)
{
    const cr_plugin *p = h ? h->host_data : NULL;
    const char *who = p && p->id ? p->id : "crucible";
    if (!step) return;
    if (fraction < 0)
        cr_host_log(who, CRUCIBLE_LOG_INFO, "%s ...", step);
    else if (fraction >= 1.0)
        cr_host_log(who, CRUCIBLE_LOG_INFO, "%s: done", step);
    else
        cr_host_log(who, CRUCIBLE_LOG_INFO, "%s: %3.0f%%", step,
                    fraction * 100.0);
}

static const crucible_host_progress g_progress = {
    CRUCIBLE_HEADER(crucible_host_progress), svc_progress};

const crucible_host_progress *cr_host_progress(void);
const crucible_host_progress *cr_host_progress(void) { return &g_progress; }
