/* store_key.h - Redis key names for revocation records.
 *
 * Client text never reaches a key: the issuer and the jti or subject are
 * hashed, so a key has a fixed length whatever they contain and one issuer's
 * ids cannot collide with another's. */
#ifndef REVOKD_STORE_KEY_H
#define REVOKD_STORE_KEY_H

#include <stddef.h>

#include "revokd/jwt.h"

enum store_key_kind { STORE_KEY_JTI = 'j', STORE_KEY_SUB = 's' };

/* Longest issuer or id that may be named: the one limit on iss, jti and sub,
 * from the token to the configuration (REVOKD_ISSUER). */
#define STORE_KEY_ID_MAX JWT_STR_MAX
/* Longest key prefix (REVOKD_KEY_PREFIX). */
#define STORE_KEY_PREFIX_MAX 64
/* Bytes of the digest in a key: 120 bits, 20 base64url characters. */
#define STORE_KEY_DIGEST_BYTES 15
/* prefix + kind + 20 characters + NUL */
#define STORE_KEY_SIZE (STORE_KEY_PREFIX_MAX + 1 + 20 + 1)

/* Writes <prefix><kind><base64url of SHA-256(be32 len(iss) || iss || id),
 * first 15 bytes> into out (STORE_KEY_SIZE bytes). The length prefix keeps
 * ("ab", "c") and ("a", "bc") apart, and issuers apart from each other.
 * Short keys are small records: with the default prefix a key is 28 bytes,
 * which Redis stores in a 32-byte allocation. 120 bits leave no practical
 * chance of two ids sharing a key. Returns the key length. */
size_t store_key(char *out, const char *prefix, enum store_key_kind kind, const char *iss,
                 const char *id);

/* The digest a key names: the first STORE_KEY_DIGEST_BYTES of SHA-256(be32
 * len(iss) || iss || id), as store_key() encodes it. The in-memory stores
 * (store_set.h) keep revocations by it, so they key them exactly as Redis
 * does. */
void store_key_digest(unsigned char out[STORE_KEY_DIGEST_BYTES], const char *iss, const char *id);

#endif
