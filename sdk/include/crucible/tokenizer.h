/*
 * crucible/tokenizer.h - interface "crucible.tokenizer/1": text <-> token
 * ids for language models whose file carries its vocabulary (e.g. GGUF's
 * tokenizer.ggml.* metadata). Used by `crucible tokenize` and
 * `crucible generate`.
 */
#ifndef CRUCIBLE_TOKENIZER_H
#define CRUCIBLE_TOKENIZER_H

#include <crucible/host.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRUCIBLE_IFACE_TOKENIZER "crucible.tokenizer/1"

typedef struct crucible_tokenizer {
    crucible_header hdr;

    /* [main-thread] Opens the vocabulary of the model file at path into
     * *tok. CRUCIBLE_E_NOTFOUND when the file has no vocabulary,
     * CRUCIBLE_E_FORMAT (after logging why) when it is malformed. */
    int (*open)(void *state, const char *path, void **tok);

    /* [main-thread] Encodes len bytes of UTF-8 text. add_bos != 0 prepends
     * the BOS token when the vocabulary has one. Writes up to cap ids and
     * the full count to *n (call again with a larger buffer when *n > cap;
     * the return is CRUCIBLE_E_LIMIT then). */
    int (*encode)(void *tok, const char *text, size_t len, int add_bos,
                  int32_t *ids, size_t cap, size_t *n);

    /* [main-thread] The bytes of one token's text piece (byte tokens give
     * their byte; control tokens give ""). Writes up to cap bytes, the full
     * length to *len. */
    int (*piece)(void *tok, int32_t id, char *buf, size_t cap, size_t *len);

    /* Vocabulary size, and the BOS / EOS ids (-1 when absent). */
    int32_t (*n_vocab)(void *tok);
    int32_t (*bos)(void *tok);
    int32_t (*eos)(void *tok);

    /* [main-thread] Releases tok. */
    void (*close)(void *tok);
} crucible_tokenizer;

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_TOKENIZER_H */
