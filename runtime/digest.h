/* SHA-256 (FIPS 180-4): the cache's content address and entry checksum. */
#ifndef SNAPMLA_RUNTIME_DIGEST_H
#define SNAPMLA_RUNTIME_DIGEST_H
#include <stddef.h>
#include <stdint.h>

typedef struct snapmla_sha256 {
    uint32_t state[8];
    uint64_t length;        /* bytes hashed so far */
    unsigned char block[64];
    size_t used;            /* bytes waiting in block */
} snapmla_sha256;

void snapmla_sha256_init(snapmla_sha256 *h);
void snapmla_sha256_update(snapmla_sha256 *h, const void *data, size_t size);
void snapmla_sha256_final(snapmla_sha256 *h, unsigned char digest[32]);
/* One shot, as 64 lowercase hex digits. */
void snapmla_sha256_hex(const void *data, size_t size, char hex[65]);
void snapmla_hex(const unsigned char *bytes, size_t size, char *out);

#endif
