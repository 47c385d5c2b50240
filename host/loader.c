/* loader.c - plugin discovery, validation and loading. See loader.h. */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ logging */

static int g_verbosity = 0;
static char g_last_error[1024]; /* last ERROR-level message, even if hidden */

const char *cr_host_last_error(void) { return g_last_error; }

void cr_host_set_verbosity(int v) { g_verbosity = v; }

static void vlog(const char *who, int level, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && msg[l - 1] == '\n') msg[--l] = 0;
    if (level >= CRUCIBLE_LOG_ERROR)
        snprintf(g_last_error, sizeof g_last_error, "%s", msg);
    if (level == CRUCIBLE_LOG_DEBUG && g_verbosity < 1) return;
    if (level == CRUCIBLE_LOG_INFO && g_verbosity < 0) return;
    if (level == CRUCIBLE_LOG_WARN && g_verbosity < 0) return;
    if (level == CRUCIBLE_LOG_ERROR && g_verbosity < -1) return;
    static const char *const names[] = {"debug", "info", "warning", "error",
                                        "plugin misbehaving"};
    const char *ln = (level >= 0 && level <= 4) ? names[level] : "log";
    if (level == CRUCIBLE_LOG_INFO)
        fprintf(stderr, "[%s] %s\n", who, msg);
    else
        fprintf(stderr, "[%s] %s: %s\n", who, ln, msg);
}

void cr_host_log(const char *who, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(who, level, fmt, ap);
    va_end(ap);
}

static void svc_log(const crucible_host *h, int level, const char *fmt, ...)
{
    cr_plugin *p = h ? h->host_data : NULL;
    if (level == CRUCIBLE_LOG_MISBEHAVING && p) p->misbehaved = 1;
    va_list ap;
    va_start(ap, fmt);
    vlog(p && p->id ? p->id : "plugin", level, fmt ? fmt : "(null)", ap);
    va_end(ap);
}

static void *svc_realloc(const crucible_host *h, void *ptr, size_t old,
                         size_t n)
{
    (void)h;
    (void)old;
    if (n == 0) {
        cr_free(ptr);
        return NULL;
    }
    return cr_realloc(ptr, n);
}

/* tools.c and progress live elsewhere; get_extension dispatches. */
const crucible_host_progress *cr_host_progress(void);

static const void *svc_get_extension(const crucible_host *h, const char *id)
{
    (void)h;
    if (!id) return NULL;
    if (!strcmp(id, CRUCIBLE_EXT_TOOLS)) return cr_host_tools();
    if (!strcmp(id, CRUCIBLE_EXT_PROGRESS)) return cr_host_progress();
    return NULL;
}

static void host_table_init(crucible_host *h, cr_plugin *p)
{
    memset(h, 0, sizeof *h);
    h->hdr = (crucible_header)CRUCIBLE_HEADER(crucible_host);
    h->abi_tag = CRUCIBLE_ABI_TAG;
    h->host_name = "crucible";
    h->host_version = CRUCIBLE_VERSION;
    h->log = svc_log;
    h->realloc = svc_realloc;
    h->get_extension = svc_get_extension;
    h->plugin_path = p ? p->path : "(host)";
    h->plugin_dir = p ? p->dir : ".";
    h->host_data = p;
}

const crucible_host *cr_host_self(void)
{
    static crucible_host self;
    static int init;
    if (!init) {
        host_table_init(&self, NULL);
        init = 1;
    }
    return &self;
}

/* ------------------------------------------------------ crash reporting */

static const cr_plugin *g_cur_plugin;
static const char *g_cur_slot;

void cr_loader_enter(const cr_plugin *p, const char *slot)
{
    g_cur_plugin = p;
    g_cur_slot = slot;
}
void cr_loader_leave(void)
{
    g_cur_plugin = NULL;
    g_cur_slot = NULL;
}
const char *cr_loader_current(const char **slot);
const char *cr_loader_current(const char **slot)
{
    if (slot) *slot = g_cur_slot;
    return g_cur_plugin ? g_cur_plugin->id : NULL;
}

/* ---------------------------------------------------------- search path */

void cr_strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) cr_free(*p);
    cr_free(v);
}

static int strv_push(char ***v, size_t *n, size_t *cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], s)) return 0; /* same directory twice */
    if (cr_grow((void **)v, cap, *n + 2, sizeof(char *))) return -1;
    (*v)[*n] = cr_strdup(s);
    if (!(*v)[*n]) return -1;
    (*n)++;
    (*v)[*n] = NULL;
    return 0;
}

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = 0;
    return cr_dirname(buf);
}

char **cr_plugin_search_path(const char *const *cli, size_t n_cli,
                             const char *argv0, char *err, size_t errlen)
{
    (void)argv0;
    char **v = NULL;
    size_t n = 0, cap = 0;
    char rp[PATH_MAX];
    if (cr_grow((void **)&v, &cap, 1, sizeof(char *))) goto oom;
    v[0] = NULL;
    for (size_t i = 0; i < n_cli; i++) {
        if (!cr_is_dir(cli[i])) {
            snprintf(err, errlen,
                     "plugin directory %s does not exist or is not a "
                     "directory (check --plugin-dir)",
                     cli[i]);
            cr_strv_free(v);
            return NULL;
        }
        if (!realpath(cli[i], rp) || strv_push(&v, &n, &cap, rp)) goto oom;
    }
    const char *env = getenv("CRUCIBLE_PLUGIN_PATH");
    if (env && *env) {
        char *copy = cr_strdup(env), *save = NULL;
        if (!copy) goto oom;
        for (char *tok = strtok_r(copy, ":", &save); tok;
             tok = strtok_r(NULL, ":", &save)) {
            /* Relative entries would depend on the current directory:
             * ignored, like an empty entry. */
            if (tok[0] != '/') continue;
            if (cr_is_dir(tok) && realpath(tok, rp) &&
                strv_push(&v, &n, &cap, rp)) {
                cr_free(copy);
                goto oom;
            }
        }
        cr_free(copy);
    }
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char *user = NULL;
    if (xdg && xdg[0] == '/')
        user = cr_path_join(xdg, "crucible/plugins");
    else if (home && home[0] == '/')
        user = cr_path_join(home, ".local/share/crucible/plugins");
    if (user && cr_is_dir(user) && realpath(user, rp) &&
        strv_push(&v, &n, &cap, rp)) {
        cr_free(user);
        goto oom;
    }
    cr_free(user);
    char *ed = exe_dir();
    if (ed) {
        char *sys = cr_path_join(ed, CRUCIBLE_SYSTEM_PLUGIN_REL);
        cr_free(ed);
        if (sys && cr_is_dir(sys) && realpath(sys, rp) &&
            strv_push(&v, &n, &cap, rp)) {
            cr_free(sys);
            goto oom;
        }
        cr_free(sys);
    }
    if (cr_is_dir(CRUCIBLE_SYSTEM_PLUGIN_DIR) &&
        realpath(CRUCIBLE_SYSTEM_PLUGIN_DIR, rp) &&
        strv_push(&v, &n, &cap, rp))
        goto oom;
    return v;
oom:
    snprintf(err, errlen, "out of memory");
    cr_strv_free(v);
    return NULL;
}

/* --------------------------------------------------------------- loading */

void cr_loader_init(cr_loader *L, int verbosity)
{
    memset(L, 0, sizeof *L);
    L->verbosity = verbosity;
}

static int id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
        if (n >= 63) return 0;
    }
    return n > 0;
}

/* Copies a plugin-provided string defensively (bounded). */
static char *copy_str(const char *s)
{
    if (!s) return NULL;
    size_t n = strnlen(s, 1024);
    return cr_strndup(s, n);
}

static cr_plugin *new_record(cr_loader *L, const char *path)
{
    if (cr_grow((void **)&L->plugins, &L->cap, L->n + 1, sizeof(cr_plugin *)))
        return NULL;
    cr_plugin *p = cr_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->path = cr_strdup(path);
    p->dir = path[0] == '/' ? cr_dirname(path) : cr_strdup("");
    if (!p->path || !p->dir) {
        cr_free(p->path);
        cr_free(p->dir);
        cr_free(p);
        return NULL;
    }
    L->plugins[L->n++] = p;
    return p;
}

#define REFUSE(p, ...)                                                      \
    do {                                                                    \
        (p)->status = CR_PLUGIN_REFUSED;                                    \
        snprintf((p)->reason, sizeof (p)->reason, __VA_ARGS__);             \
    } while (0)

static void add_kind(cr_plugin *p, const char *k)
{
    size_t l = strlen(p->kinds);
    snprintf(p->kinds + l, sizeof p->kinds - l, "%s%s", l ? "," : "", k);
}

/* Validates the vtable header and copies min(size, sizeof) of it. */
static int take_iface(cr_plugin *p, const char *iid, void *dst, size_t dsz)
{
    const void *vt = NULL;
    cr_loader_enter(p, "get_interface");
    vt = p->entry.get_interface(p->state, iid);
    cr_loader_leave();
    if (!vt) {
        REFUSE(p, "declares %s but get_interface returned NULL", iid);
        return -1;
    }
    crucible_header h;
    memcpy(&h, vt, sizeof h);
    if (h.abi_major != CRUCIBLE_ABI_MAJOR) {
        REFUSE(p, "interface %s has ABI %u.%u; host ABI is %d.%d", iid,
               h.abi_major, h.abi_minor, CRUCIBLE_ABI_MAJOR,
               CRUCIBLE_ABI_MINOR);
        return -1;
    }
    if (h.size < sizeof(crucible_header) || h.size > (1u << 20)) {
        REFUSE(p, "interface %s has an implausible size %u", iid, h.size);
        return -1;
    }
    memset(dst, 0, dsz);
    memcpy(dst, vt, h.size < dsz ? h.size : dsz);
    return 0;
}

static cr_plugin *validate_and_init(cr_loader *L, cr_plugin *p,
                                    const crucible_plugin_entry *e)
{
    /* 1. The header, readable whatever the pointer width. */
    crucible_header h;
    memcpy(&h, e, sizeof h);
    p->abi_major = h.abi_major;
    p->abi_minor = h.abi_minor;
    p->entry_size = h.size;
    if (h.abi_major != CRUCIBLE_ABI_MAJOR) {
        REFUSE(p,
               "plugin ABI %u.%u, host ABI %d.%d: a different major version "
               "cannot be loaded; rebuild the plugin against crucible-sdk %d",
               h.abi_major, h.abi_minor, CRUCIBLE_ABI_MAJOR,
               CRUCIBLE_ABI_MINOR, CRUCIBLE_ABI_MAJOR);
        return p;
    }
    if (h.size < offsetof(crucible_plugin_entry, id)) {
        REFUSE(p, "entry struct is only %u bytes; too small to be valid",
               h.size);
        return p;
    }
    uint32_t tag;
    memcpy(&tag, (const char *)e + offsetof(crucible_plugin_entry, abi_tag),
           sizeof tag);
    if (tag != CRUCIBLE_ABI_TAG) {
        REFUSE(p,
               "ABI tag 0x%08x does not match the host's 0x%08x (plugin built "
               "with sizeof(void*)=%u, sizeof(size_t)=%u; host has %zu, %zu): "
               "a 32/64-bit or mixed build",
               tag, CRUCIBLE_ABI_TAG, (tag >> 8) & 0xff, tag & 0xff,
               sizeof(void *), sizeof(size_t));
        return p;
    }
    /* 2. Zero-extended copy: slots the plugin does not know read NULL. */
    memset(&p->entry, 0, sizeof p->entry);
    memcpy(&p->entry, e,
           h.size < sizeof p->entry ? h.size : sizeof p->entry);
    if (h.abi_minor > CRUCIBLE_ABI_MINOR)
        snprintf(p->reason, sizeof p->reason,
                 "built for newer ABI minor %u.%u; fields beyond %d.%d ignored",
                 h.abi_major, h.abi_minor, CRUCIBLE_ABI_MAJOR,
                 CRUCIBLE_ABI_MINOR);
    const crucible_plugin_entry *c = &p->entry;
    p->id = copy_str(c->id);
    p->name = copy_str(c->name);
    p->version = copy_str(c->version);
    p->vendor = copy_str(c->vendor);
    p->description = copy_str(c->description);
    if (!c->id || !id_ok(c->id)) {
        REFUSE(p, "entry has a missing or invalid id (want 1-63 characters "
                  "from [A-Za-z0-9._-])");
        return p;
    }
    if (!c->version || !*c->version) {
        REFUSE(p, "entry has no version string");
        return p;
    }
    if (!c->interfaces || !c->interfaces[0]) {
        REFUSE(p, "entry declares no interfaces");
        return p;
    }
    if (!c->get_interface) {
        REFUSE(p, "entry has no get_interface slot");
        return p;
    }
    int fe = 0, tg = 0, pl = 0, tk = 0;
    for (size_t i = 0; c->interfaces[i] && i < 64; i++) {
        const char *iid = c->interfaces[i];
        if (!strcmp(iid, CRUCIBLE_IFACE_FRONTEND)) fe = 1;
        else if (!strcmp(iid, CRUCIBLE_IFACE_TARGET)) tg = 1;
        else if (!strcmp(iid, CRUCIBLE_IFACE_PLANNER)) pl = 1;
        else if (!strcmp(iid, CRUCIBLE_IFACE_TOKENIZER)) tk = 1;
        else if (!strncmp(iid, "crucible.", 9)) {
            REFUSE(p, "declares interface %s, which this host (ABI %d.%d) "
                      "does not know", iid, CRUCIBLE_ABI_MAJOR,
                   CRUCIBLE_ABI_MINOR);
            return p;
        }
    }
    if (fe) add_kind(p, "frontend");
    if (tg) add_kind(p, "target");
    if (pl) add_kind(p, "planner");
    if (tk) add_kind(p, "tokenizer");
    if (!fe && !tg && !pl && !tk) add_kind(p, "extension");
    /* 3. Duplicate id: the first one wins. */
    for (size_t i = 0; i < L->n; i++) {
        cr_plugin *o = L->plugins[i];
        if (o != p && o->status == CR_PLUGIN_LOADED && o->id &&
            !strcmp(o->id, c->id)) {
            p->status = CR_PLUGIN_DUPLICATE;
            snprintf(p->reason, sizeof p->reason,
                     "duplicate id %s: already provided by %s; this one is "
                     "ignored",
                     c->id, o->path);
            return p;
        }
    }
    /* 4. init: the first plugin code the host runs. */
    host_table_init(&p->host, p);
    if (c->init) {
        cr_loader_enter(p, "init");
        int rc = c->init(&p->host, &p->state);
        cr_loader_leave();
        if (rc != CRUCIBLE_OK) {
            REFUSE(p, "init failed: %s (status %d)", crucible_status_str(rc),
                   rc);
            return p;
        }
    }
    p->inited = 1;
    /* 5. Interfaces, with their required slots. */
    if (fe) {
        if (take_iface(p, CRUCIBLE_IFACE_FRONTEND, &p->frontend,
                       sizeof p->frontend))
            return p;
        if (!p->frontend.score || !p->frontend.load) {
            REFUSE(p, "frontend interface lacks the %s slot",
                   !p->frontend.score ? "score" : "load");
            return p;
        }
        p->has_frontend = 1;
    }
    if (tg) {
        if (take_iface(p, CRUCIBLE_IFACE_TARGET, &p->target,
                       sizeof p->target))
            return p;
        if (!p->target.query || !p->target.compile) {
            REFUSE(p, "target interface lacks the %s slot",
                   !p->target.query ? "query" : "compile");
            return p;
        }
        p->has_target = 1;
    }
    if (pl) {
        if (take_iface(p, CRUCIBLE_IFACE_PLANNER, &p->planner,
                       sizeof p->planner))
            return p;
        if (!p->planner.plan) {
            REFUSE(p, "planner interface lacks the plan slot");
            return p;
        }
        p->has_planner = 1;
    }
    if (tk) {
        if (take_iface(p, CRUCIBLE_IFACE_TOKENIZER, &p->tokenizer,
                       sizeof p->tokenizer))
            return p;
        if (!p->tokenizer.open || !p->tokenizer.encode ||
            !p->tokenizer.piece || !p->tokenizer.close) {
            REFUSE(p, "tokenizer interface lacks a required slot (open, "
                      "encode, piece, close)");
            return p;
        }
        p->has_tokenizer = 1;
    }
    p->status = CR_PLUGIN_LOADED;
    return p;
}

static void unload(cr_plugin *p)
{
    if (p->inited && p->entry.deinit) {
        cr_loader_enter(p, "deinit");
        p->entry.deinit(p->state);
        cr_loader_leave();
    }
    p->inited = 0;
    if (p->dl) dlclose(p->dl);
    p->dl = NULL;
}

cr_plugin *cr_loader_load_file(cr_loader *L, const char *path)
{
    cr_plugin *p = new_record(L, path);
    if (!p) return NULL;
    dlerror();
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *e = dlerror();
        REFUSE(p, "cannot load: %s", e ? e : "dlopen failed");
        return p;
    }
    const crucible_plugin_entry *e = dlsym(p->dl, CRUCIBLE_ENTRY_SYMBOL);
    if (!e) {
        REFUSE(p, "no exported symbol %s: not a crucible plugin (or built "
                  "without CRUCIBLE_EXPORT)", CRUCIBLE_ENTRY_SYMBOL);
        dlclose(p->dl);
        p->dl = NULL;
        return p;
    }
    validate_and_init(L, p, e);
    if (p->status != CR_PLUGIN_LOADED) unload(p);
    return p;
}

cr_plugin *cr_loader_add_builtin(cr_loader *L,
                                 const crucible_plugin_entry *entry)
{
    cr_plugin *p = new_record(L, "(built-in)");
    if (!p) return NULL;
    validate_and_init(L, p, entry);
    if (p->status != CR_PLUGIN_LOADED) unload(p);
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

extern const crucible_plugin_entry cr_builtin_irtext_entry;

int cr_loader_load_all(cr_loader *L, char *const *dirs)
{
    cr_loader_add_builtin(L, &cr_builtin_irtext_entry);
    for (size_t d = 0; dirs && dirs[d]; d++) {
        DIR *dh = opendir(dirs[d]);
        if (!dh) {
            cr_host_log("crucible", CRUCIBLE_LOG_WARN,
                        "cannot read plugin directory %s: %s", dirs[d],
                        strerror(errno));
            continue;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(dh))) {
            size_t l = strlen(de->d_name);
            if (l < 4 || strcmp(de->d_name + l - 3, ".so") != 0) continue;
            if (cr_grow((void **)&names, &cap, n + 1, sizeof(char *))) break;
            names[n] = cr_path_join(dirs[d], de->d_name);
            if (names[n]) n++;
        }
        closedir(dh);
        if (n) qsort(names, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (cr_is_file(names[i])) {
                cr_plugin *p = cr_loader_load_file(L, names[i]);
                if (p && p->status != CR_PLUGIN_LOADED && L->verbosity >= 1)
                    cr_host_log("crucible", CRUCIBLE_LOG_WARN, "plugin %s %s: %s",
                                names[i],
                                p->status == CR_PLUGIN_DUPLICATE ? "ignored"
                                                                 : "refused",
                                p->reason);
            }
            cr_free(names[i]);
        }
        cr_free(names);
    }
    return 0;
}

cr_plugin *cr_loader_find(cr_loader *L, const char *id, const char *kind)
{
    for (size_t i = 0; i < L->n; i++) {
        cr_plugin *p = L->plugins[i];
        if (p->status != CR_PLUGIN_LOADED || !p->id || strcmp(p->id, id))
            continue;
        if (!kind) return p;
        if (!strcmp(kind, "frontend") && p->has_frontend) return p;
        if (!strcmp(kind, "target") && p->has_target) return p;
        if (!strcmp(kind, "planner") && p->has_planner) return p;
        if (!strcmp(kind, "tokenizer") && p->has_tokenizer) return p;
    }
    return NULL;
}

void cr_loader_free(cr_loader *L)
{
    for (size_t i = L->n; i-- > 0;) {
        cr_plugin *p = L->plugins[i];
        unload(p);
        cr_free(p->path);
        cr_free(p->dir);
        cr_free(p->id);
        cr_free(p->name);
        cr_free(p->version);
        cr_free(p->vendor);
        cr_free(p->description);
        cr_free(p);
    }
    cr_free(L->plugins);
    memset(L, 0, sizeof *L);
}
