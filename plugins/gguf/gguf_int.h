/*
 * gguf_int.h - shared between the gguf plugin's files (not part of the
 * SDK). gguf_read.[ch] and gguf_quant.c are the standalone reader;
 * gguf_plugin.c the entry point and frontend; gguf_tok.c the tokenizer.
 */
#ifndef GGUF_INT_H
#define GGUF_INT_H

#include <crucible/crucible.h>

#include "gguf_read.h"

/* The host table given to init(); [main-thread]. */
extern const crucible_host *gg_host;

/* gguf_realloc_fn over the host's allocator. */
void *gg_realloc(void *ud, void *ptr, size_t old_size, size_t new_size);
void *gg_alloc(size_t n);             /* zeroed; NULL when out of memory */
void gg_free(void *p, size_t n);

/* Opens path with the reader; logs the reason (prefixed with the path) at
 * error level on failure and returns the reader's status. */
int gg_open(const char *path, gguf_file **out);

/* Reads the first bytes of path: 1 when they are the GGUF magic. */
int gg_has_magic(const char *path);

/* The model being loaded (gguf_plugin.c fills it before a template's
 * build function runs; the summary metadata is then already written). */
typedef struct gg_model {
    gguf_file *f;
    const char *path;
    char arch[64];   /* general.architecture (sanitised), "" if absent */
    int64_t n_vocab; /* 0 when unknown */
} gg_model;

/* The body when no template can build it: input `tokens` -> one node of
 * op "unsupported" (source_op "gguf:<arch>", attribute reason) -> output
 * `logits`. */
int gg_build_pending(gg_model *m, const crucible_ir_builder *b,
                     const char *reason);

/* Architecture templates (one build function each; the table is
 * k_templates in gguf_plugin.c). */
int gg_build_llama(gg_model *m, const crucible_ir_builder *b); /* gguf_llama.c */

/* The tokenizer interface (gguf_tok.c). */
extern const crucible_tokenizer gg_tokenizer;

#endif /* GGUF_INT_H */
