/* jwks.h - the verification keys, each pinned to exactly one algorithm.
 *
 * Keys come from JWKS documents (a file, or text fetched by the caller), one
 * PEM public key, or one HMAC secret, and are parsed once when loaded. The
 * token never chooses the algorithm: it only names a key (kid), and the key
 * says how it must be verified. */
#ifndef REVOKD_JWKS_H
#define REVOKD_JWKS_H

#include <stdbool.h>
#include <stddef.h>

/* The JWS algorithms revokd verifies (RFC 7518 3.1, RFC 8037 3.1). EdDSA is
 * one JWS name for two curves, Ed25519 and Ed448: the key's curve decides. */
enum jwt_alg {
    ALG_RS256, ALG_RS384, ALG_RS512, /* RSASSA-PKCS1-v1_5 */
    ALG_PS256, ALG_PS384, ALG_PS512, /* RSASSA-PSS, MGF1 with the same hash, salt of hash length */
    ALG_ES256, ALG_ES384, ALG_ES512, /* ECDSA on P-256, P-384, P-521 */
    ALG_EDDSA,                       /* Ed25519 or Ed448 */
    ALG_HS256, ALG_HS384, ALG_HS512, /* HMAC */
};

/* Returns the algorithm for an exact JWS name ("RS256", "EdDSA"), or -1. */
int jwks_alg_parse(const char *name);
const char *jwks_alg_name(enum jwt_alg alg);

/* Bit (1u << ALG_x) per algorithm. */
#define JWKS_ALG_BIT(a) (1u << (a))
/* Parses a comma-separated list of exact JWS names ("RS256,PS256"; spaces
 * around names allowed) into a bit set. 0 and *out set, or -1 with the reason
 * in err (names the bad word). "" gives 0 (meaning: any). */
int jwks_algs_parse(const char *list, unsigned *out, char *err, size_t errlen);

struct jwks;
struct jwk;

struct jwks *jwks_new(void);
void jwks_free(struct jwks *set);

struct jwks_opts {
    unsigned algs;      /* accepted algorithms (JWKS_ALG_BIT); 0 = every supported one */
    size_t max_keys;    /* most keys a document may hold (every entry of "keys" counts, used or
                           not); 0 = no limit */
    bool skip_unusable; /* a remote set: a key revokd cannot use (unknown kty/alg/crv, alg not in
                           algs, RSA < 2048 bits, point not on the curve, ...) is skipped and
                           counted rather than failing the document */
};

/* Adds the keys of the JWKS document text (len bytes, need not be
 * NUL-terminated) to set. what names the source in errors
 * ("https://.../jwks"). opts NULL: every algorithm, no key limit, no skipping.
 * Returns the number of keys skipped (>= 0; the first skip's reason is left in
 * err when err is non-NULL, else err is ""), or -1 with the reason in err and
 * set as it was. A document that is not JSON, not {"keys": [...]}, has more
 * than max_keys entries, or a duplicate kid (among the keys it adds, or with
 * a key already in set) is refused as a whole.
 *
 * A JWK with "use" other than "sig", or with "key_ops" lacking "verify", is
 * not used and not counted. Without "alg", an EC key's curve names its
 * algorithm (P-256 ES256, P-384 ES384, P-521 ES512) and an OKP key's is
 * EdDSA; an RSA or oct key gets the one algorithm of its type in opts->algs,
 * and needs "alg" when there are several. */
int jwks_load_json(struct jwks *set, const char *text, size_t len, const char *what,
                   const struct jwks_opts *opts, char *err, size_t errlen);

/* jwks_load_json() of the file at path. */
int jwks_load_file(struct jwks *set, const char *path, const struct jwks_opts *opts, char *err,
                   size_t errlen);

/* Each adds one kid-less key to set, or returns -1 with the reason in err and
 * leaves set as it was. algs (JWKS_ALG_BIT; 0 = any) are the accepted
 * algorithms: a key pinned to another one is refused. alg NULL or "" lets the
 * PEM loader infer it from the key: RS256 for RSA (PS* only when given),
 * ES256/ES384/ES512 by curve, EdDSA for Ed25519 and Ed448. */
int jwks_load_pem(struct jwks *set, const char *path, const char *alg, unsigned algs, char *err,
                  size_t errlen);
int jwks_load_hmac(struct jwks *set, const char *path, const char *alg, unsigned algs, char *err,
                   size_t errlen);

size_t jwks_count(const struct jwks *set);

/* true when every key of a is also in b: same kid (or both without), same
 * algorithm, same key material (EVP_PKEY_eq / the same secret). A set that
 * loses no key keeps every token it verified valid. NULL is an empty set. */
bool jwks_subset(const struct jwks *a, const struct jwks *b);

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
