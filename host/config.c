/* config.c - INI documents via inih; board discovery. See config.h. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    cr_kvdoc *d;
    int oom;
    int dup_line;
    char dup[256];
} ctx;

/* Debian's inih is built without INI_HANDLER_LINENO, so the handler does
 * not get line numbers; duplicate keys are reported by name. */
static int on_kv(void *user, const char *section, const char *name,
                 const char *value)
{
    int lineno = 0;
    ctx *c = user;
    cr_kvdoc *d = c->d;
    if (!name) return 1; /* section header alone */
    char lsec[256];
    snprintf(lsec, sizeof lsec, "%s", section);
    for (char *p = lsec; *p; p++) *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < d->doc.count; i++)
        if (!strcmp(d->items[i].section, lsec) &&
            !strcmp(d->items[i].key, name)) {
            c->dup_line = 1;
            snprintf(c->dup, sizeof c->dup, "%s%s%s", section,
                     *section ? "." : "", name);
            return 0;
        }
    if (cr_grow((void **)&d->items, &d->cap, d->doc.count + 1,
                sizeof(crucible_kv))) {
        c->oom = 1;
        return 0;
    }
    crucible_kv *kv = &d->items[d->doc.count];
    char *s = cr_strdup(section);
    if (s)
        for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
    kv->section = s;
    kv->key = cr_strdup(name);
    kv->value = cr_strdup(value ? value : "");
    kv->line = (uint32_t)lineno;
    if (!kv->section || !kv->key || !kv->value) {
        cr_free((char *)kv->section);
        cr_free((char *)kv->key);
        cr_free((char *)kv->value);
        c->oom = 1;
        return 0;
    }
    d->doc.count++;
    return 1;
}

void cr_kv_free(cr_kvdoc *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->doc.count; i++) {
        cr_free((char *)d->items[i].section);
        cr_free((char *)d->items[i].key);
        cr_free((char *)d->items[i].value);
    }
    cr_free(d->items);
    cr_free(d->ptrs);
    cr_free((char *)d->doc.path);
    cr_free(d);
}

cr_kvdoc *cr_kv_load(const char *path, char *err, size_t errlen)
{
    cr_kvdoc *d = cr_calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->doc.size = sizeof d->doc;
    d->doc.path = cr_strdup(path);
    ctx c = {d, 0, 0, ""};
    if (cr_is_dir(path)) {
        snprintf(err, errlen, "%s is a directory, not an INI file", path);
        cr_kv_free(d);
        return NULL;
    }
    int r = ini_parse(path, on_kv, &c);
    if (r == -1) {
        snprintf(err, errlen, "cannot open %s", path);
    } else if (r == -2 || c.oom) {
        snprintf(err, errlen, "%s: out of memory", path);
    } else if (c.dup_line) {
        snprintf(err, errlen, "%s: duplicate key %s", path, c.dup);
    } else if (r > 0) {
        snprintf(err, errlen,
                 "%s:%d: syntax error (expected [section] or key = value)",
                 path, r);
    } else {
        d->ptrs = cr_calloc(d->doc.count ? d->doc.count : 1, sizeof(void *));
        if (!d->ptrs) {
            snprintf(err, errlen, "out of memory");
        } else {
            for (size_t i = 0; i < d->doc.count; i++) d->ptrs[i] = &d->items[i];
            d->doc.entries = d->ptrs;
            return d;
        }
    }
    cr_kv_free(d);
    return NULL;
}

const char *cr_kv_get(const cr_kvdoc *d, const char *section, const char *key)
{
    return d ? crucible_kv_get(&d->doc, section, key) : NULL;
}

cr_board *cr_boards_add_file(cr_boardset *set, const char *path, char *err,
                             size_t errlen)
{
    cr_kvdoc *kv = cr_kv_load(path, err, errlen);
    if (!kv) return NULL;
    const char *name = cr_kv_get(kv, "board", "name");
    const char *target = cr_kv_get(kv, "board", "target");
    if (!name || !*name || !target || !*target) {
        snprintf(err, errlen,
                 "%s: a board needs [board] name = ... and target = <plugin "
                 "id> (missing %s)",
                 path, (!name || !*name) ? "name" : "target");
        cr_kv_free(kv);
        return NULL;
    }
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->boards[i]->view.name, name) &&
            !strcmp(set->boards[i]->view.target, target)) {
            /* first one wins, as for plugins */
            cr_kv_free(kv);
            return set->boards[i];
        }
    cr_board *b = cr_calloc(1, sizeof *b);
    if (!b || cr_grow((void **)&set->boards, &set->cap, set->n + 1,
                      sizeof(cr_board *))) {
        cr_free(b);
        cr_kv_free(kv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->kv = kv;
    b->view.size = sizeof b->view;
    b->view.name = name;
    b->view.target = target;
    b->view.doc = &kv->doc;
    set->boards[set->n++] = b;
    return b;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cr_boards_scan_dir(cr_boardset *set, const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".ini") != 0) continue;
        if (cr_grow((void **)&names, &cap, n + 1, sizeof(char *))) break;
        names[n] = cr_path_join(dir, de->d_name);
        if (names[n]) n++;
    }
    closedir(dh);
    if (n) qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char err[512];
        if (!cr_boards_add_file(set, names[i], err, sizeof err))
            jb_printf(&set->errors, "%s\n", err);
        cr_free(names[i]);
    }
    cr_free(names);
}

cr_board *cr_boards_find(cr_boardset *set, const char *target,
                         const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->boards[i]->view.name, name) &&
            (!target || !strcmp(set->boards[i]->view.target, target)))
            return set->boards[i];
    return NULL;
}

void cr_boards_free(cr_boardset *set)
{
    for (size_t i = 0; i < set->n; i++) {
        cr_kv_free(set->boards[i]->kv);
        cr_free(set->boards[i]);
    }
    cr_free(set->boards);
    jb_free(&set->errors);
    memset(set, 0, sizeof *set);
}
