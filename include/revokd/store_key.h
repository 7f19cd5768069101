/* store_key.h - Redis key names for revocation records.
 *
 * Client text never reaches a key: the issuer and the jti or subject are
 * hashed, so a key has a fixed length whatever they contain and one issuer's
 * ids cannot collide with another's. */
#ifndef REVOKD_STORE_KEY_H
#define REVOKD_STORE_KEY_H

#include <stddef.h>

enum store_key_kind { STORE_KEY_JTI = 'j', STORE_KEY_SUB = 's' };

/* Longest issuer or id that may be named. */
#define STORE_KEY_ID_MAX 512
/* Longest key prefix (REVOKD_KEY_PREFIX). */
#define STORE_KEY_PREFIX_MAX 64
/* prefix + "j:" + 16 hex + ":" + 32 hex + NUL */
#define STORE_KEY_SIZE (STORE_KEY_PREFIX_MAX + 2 + 16 + 1 + 32 + 1)

/* Writes <prefix><kind>:<hex64 of SHA-256(iss)>:<hex128 of SHA-256(be32 len(iss)
 * || iss || id)> into out (STORE_KEY_SIZE bytes). The length prefix keeps
 * ("ab", "c") and ("a", "bc") apart. Returns the key length. */
size_t store_key(char *out, const char *prefix, enum store_key_kind kind, const char *iss,
                 const char *id);

/* Returns 0 when prefix is 1..STORE_KEY_PREFIX_MAX printable ASCII bytes
 * without spaces, -1 otherwise. */
int store_key_prefix_valid(const char *prefix);

#endif
