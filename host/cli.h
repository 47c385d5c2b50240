/* cli.h - shared between the CLI's command files. */
#ifndef CR_CLI_H
#define CR_CLI_H

#include "config.h"
#include "ir.h"
#include "loader.h"

typedef struct cli {
    const char **plugin_dirs;
    size_t n_plugin_dirs;
    int verbosity; /* -1 quiet, 0 normal, 1 verbose */
    int json;
    const char *argv0;
    cr_loader loader;
    int loaded;
} cli;

int cli_main(int argc, char **argv);
int cli_load_plugins(cli *c);
void die_oom(void);
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int is_help(const char *a);
cr_graph *cli_load_model(cli *c, const char *path, const char *force_fe,
                         const cr_plugin **used);
/* Same, also giving the frontend's status (CRUCIBLE_E_UNSUPPORTED: valid
 * but uses something not supported). */
cr_graph *cli_load_model_st(cli *c, const char *path, const char *force_fe,
                            const cr_plugin **used, int *status);
size_t cli_unsupported(const cr_graph *g, jbuf *human, jbuf *json);
void cli_collect_boards(cli *c, cr_boardset *set, const char *const *extra,
                        size_t n_extra);
int cli_accept_board(cr_plugin *p, const cr_board *b, char *why, size_t n);
/* The package being written, removed by the crash handler. */
void cli_set_tmp_package(const char *path);
/* Work directories removed by the crash handler (on = 1 add, 0 remove). */
void cli_register_workdir(const char *path, int on);

#endif
