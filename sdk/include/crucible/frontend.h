/*
 * crucible/frontend.h - interface "crucible.frontend/1": model file -> IR.
 */
#ifndef CRUCIBLE_FRONTEND_H
#define CRUCIBLE_FRONTEND_H

#include <crucible/host.h>
#include <crucible/ir.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crucible_frontend {
    crucible_header hdr;

    /* Comma-separated file extensions this frontend reads, e.g. "onnx". */
    const char *extensions;

    /* [main-thread] How well this frontend recognises the file, 0 (not
     * mine) to 100 (certain, e.g. a magic number matched). `head` holds the
     * first head_len (<= 4096) bytes of the file. Pure: no allocation, no
     * file access, no logging. The highest score wins. */
    int (*score)(void *state, const char *path, const uint8_t *head,
                 size_t head_len);

    /* [main-thread] Reads the model at `path` and builds it through `b`.
     * Untrusted input: must never crash on malformed files; returns
     * CRUCIBLE_E_FORMAT (or another negative status) after logging the
     * reason with the host's log. Source ops that cannot be lowered are
     * added as op "unsupported" with string attributes "source_op"
     * (e.g. "onnx:LSTM") and "reason", so pre-flight can name them. */
    int (*load)(void *state, const char *path, const crucible_ir_builder *b);
} crucible_frontend;

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_FRONTEND_H */
