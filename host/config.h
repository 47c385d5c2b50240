/*
 * config.h - INI documents (project config, board descriptions) read with
 * inih into the SDK's crucible_kv_doc, and board discovery.
 */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <crucible/crucible.h>

#include "util.h"

typedef struct cr_kvdoc {
    crucible_kv_doc doc; /* what plugins see */
    crucible_kv *items;
    const crucible_kv **ptrs;
    size_t cap;
    char *strings_dummy;
} cr_kvdoc;

/* Reads an INI file. NULL with "FILE:LINE: ..." in err on failure. */
cr_kvdoc *cr_kv_load(const char *path, char *err, size_t errlen);
void cr_kv_free(cr_kvdoc *d);
const char *cr_kv_get(const cr_kvdoc *d, const char *section, const char *key);

typedef struct cr_board {
    crucible_board view;
    cr_kvdoc *kv;
} cr_board;

typedef struct cr_boardset {
    cr_board **boards;
    size_t n, cap;
    jbuf errors; /* one line per INI that failed to parse */
} cr_boardset;

/* Adds every *.ini in dir (name order); parse errors are collected in
 * set->errors and do not stop the others. */
void cr_boards_scan_dir(cr_boardset *set, const char *dir);
/* Adds one file; returns the board or NULL with err. */
cr_board *cr_boards_add_file(cr_boardset *set, const char *path, char *err,
                             size_t errlen);
cr_board *cr_boards_find(cr_boardset *set, const char *target,
                         const char *name);
void cr_boards_free(cr_boardset *set);

#endif
