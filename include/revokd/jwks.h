/* jwks.h - the verification keys, each pinned to exactly one algorithm.
 *
 * Keys come from a JWKS document, one PEM public key, or one HMAC secret, and
 * are parsed once at start-up. The token never chooses the algorithm: it only
 * names a key (kid), and the key says how it must be verified. */
#ifndef REVOKD_JWKS_H
#define REVOKD_JWKS_H

#include <stddef.h>

enum jwt_alg { ALG_RS256, ALG_RS384, ALG_RS512, ALG_ES256, ALG_ES384, ALG_HS256, ALG_HS384, ALG_HS512 };

/* Returns the algorithm for an exact JWS name ("RS256"), or -1. */
int jwks_alg_parse(const char *name);
const char *jwks_alg_name(enum jwt_alg alg);

struct jwks;
struct jwk;

struct jwks *jwks_new(void);
void jwks_free(struct jwks *set);

/* Each adds keys to set, or returns -1 with the reason in err and leaves set
 * as it was before the call. alg NULL or "" lets the PEM loader infer it from
 * the key (RS256, or ES256/ES384 by curve). */
int jwks_load_file(struct jwks *set, const char *path, char *err, size_t errlen);
int jwks_load_pem(struct jwks *set, const char *path, const char *alg, char *err, size_t errlen);
int jwks_load_hmac(struct jwks *set, const char *path, const char *alg, char *err, size_t errlen);

size_t jwks_count(const struct jwks *set);

enum { JWKS_ENOKEY = 1, JWKS_EALG = 2 };

/* Picks the key for a token header: by kid when the token has one (kid may be
 * NULL), else the kid-less key pinned to alg. Returns 0 and sets *key, or
 * -JWKS_ENOKEY, or -JWKS_EALG when the kid's key is pinned to another alg. */
int jwks_select(const struct jwks *set, const char *kid, int alg, const struct jwk **key);

/* Verifies sig over msg with key and its pinned algorithm. Returns 0 when the
 * signature is valid, -1 otherwise. Safe to call from many threads. */
int jwks_verify(const struct jwk *key, const unsigned char *msg, size_t msglen,
               const unsigned char *sig, size_t siglen);

#endif
