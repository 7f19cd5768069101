/* sha256.h - SHA-256 on the request path.
 *
 * OpenSSL 3's SHA256() looks its implementation up on every call, which
 * costs more than hashing a token; this fetches it once. */
#ifndef REVOKD_SHA256_H
#define REVOKD_SHA256_H

#include <stddef.h>

#define SHA256_BYTES 32

void sha256(const void *in, size_t len, unsigned char out[SHA256_BYTES]);

#endif
