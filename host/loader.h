/*
 * loader.h - plugin discovery, validation and loading.
 *
 * Discovery order: --plugin-dir DIR (repeatable, in order), then
 * CRUCIBLE_PLUGIN_PATH (colon-separated), then $XDG_DATA_HOME/crucible/
 * plugins (default ~/.local/share/crucible/plugins), then the system
 * directory (<exe>/../lib/crucible/plugins, else the install prefix's).
 * Never the current directory. Within a directory, *.so files load in name
 * order. Built-in plugins come first. The first plugin with an id wins.
 *
 * All functions are [main-thread].
 */
#ifndef CR_LOADER_H
#define CR_LOADER_H

#include <crucible/crucible.h>

#include "util.h"

typedef enum cr_plugin_status {
    CR_PLUGIN_LOADED = 0,
    CR_PLUGIN_REFUSED = 1,   /* validation, dlopen or init failed */
    CR_PLUGIN_DUPLICATE = 2  /* another plugin already has this id */
} cr_plugin_status;

typedef struct cr_plugin {
    char *path;      /* absolute path, or "(built-in)" */
    char *dir;       /* directory holding it */
    char *id, *name, *version, *vendor, *description; /* copies, may be NULL */
    char kinds[96];  /* "frontend,target" from the declared interfaces */
    uint32_t abi_major, abi_minor, entry_size;
    int status;      /* cr_plugin_status */
    char reason[512];/* why refused, or a note for a loaded plugin */
    int misbehaved;  /* logged CRUCIBLE_LOG_MISBEHAVING */

    void *dl;                         /* dlopen handle (NULL: built-in) */
    crucible_plugin_entry entry;      /* zero-extended copy */
    void *state;
    int inited;
    crucible_host host;               /* this plugin's services table */
    int has_frontend, has_target, has_planner, has_tokenizer;
    crucible_frontend frontend;       /* zero-extended copies */
    crucible_target target;
    crucible_planner planner;
    crucible_tokenizer tokenizer;
} cr_plugin;

typedef struct cr_loader {
    cr_plugin **plugins;
    size_t n, cap;
    int verbosity; /* -1 quiet, 0 normal, 1 verbose */
} cr_loader;

/* Search path: dirs from --plugin-dir (may be NULL/0), then the rest.
 * Returns an allocated NULL-terminated array (free with cr_strv_free).
 * A --plugin-dir that does not exist is an error (message in err). */
char **cr_plugin_search_path(const char *const *cli_dirs, size_t n_cli,
                             const char *argv0, char *err, size_t errlen);
void cr_strv_free(char **v);

void cr_loader_init(cr_loader *L, int verbosity);
/* Registers the built-in plugins, then loads every plugin in dirs. */
int cr_loader_load_all(cr_loader *L, char *const *dirs);
/* Loads one file (also used by tests). Always records an entry. */
cr_plugin *cr_loader_load_file(cr_loader *L, const char *path);
/* Registers an in-process plugin entry through the same validation. */
cr_plugin *cr_loader_add_builtin(cr_loader *L,
                                 const crucible_plugin_entry *entry);
void cr_loader_free(cr_loader *L);

/* Loaded plugin by id with the given interface (NULL kind = any). */
cr_plugin *cr_loader_find(cr_loader *L, const char *id, const char *kind);

/* Which plugin is running right now (for crash reports). */
void cr_loader_enter(const cr_plugin *p, const char *slot);
void cr_loader_leave(void);

/* Host services shared by all plugins. */
void cr_host_set_verbosity(int v);
/* The last ERROR-level message logged (by the host or a plugin), even when
 * the verbosity hid it; "" if none. */
const char *cr_host_last_error(void);
void cr_host_log(const char *who, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Tool versions recorded by the tools service: JSON array text. */
void cr_tools_versions_json(jbuf *out);
const crucible_host_tools *cr_host_tools(void);
/* A host table for in-host callers (tests, host-side tool runs). */
const crucible_host *cr_host_self(void);

#endif
