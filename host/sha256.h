/*
 * sha256.h - SHA-256 (FIPS 180-4), used for package manifests and model
 * hashes. Streaming (init/update/final) and one-shot helpers.
 */
#ifndef CR_SHA256_H
#define CR_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct cr_sha256 {
    uint32_t h[8];
    uint64_t total;    /* bytes hashed so far */
    uint8_t buf[64];   /* pending partial block */
    size_t buflen;
} cr_sha256;

void cr_sha256_init(cr_sha256 *c);
void cr_sha256_update(cr_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest; c must be re-initialised before reuse. */
void cr_sha256_final(cr_sha256 *c, uint8_t out[32]);
/* Lower-case hex of a 32-byte digest, NUL-terminated. */
void cr_sha256_to_hex(const uint8_t digest[32], char hex[65]);
/* One shot: lower-case hex digest of data. */
void cr_sha256_hex(const void *data, size_t len, char hex[65]);
/* Hex digest of a file's contents. Returns 0, or -1 (errno set). */
int cr_sha256_file(const char *path, char hex[65]);

#endif
