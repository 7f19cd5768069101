/* jwt.h - decide whether a JWT is genuine and currently valid.
 *
 * Structure, signature and every claim are checked here, by us: the token's
 * own alg is only compared with the key's pinned one. Revocation is not this
 * module's business (see check.h). */
#ifndef REVOKD_JWT_H
#define REVOKD_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/jwks.h"

/* Why a token is refused: X(name, description). The names are the API's
 * "reason" values; the order is fixed, JWT_OK is 0 and the rest are returned
 * negated. */
#define JWT_REASON_TABLE(X)                                                                      \
    X(missing_token, "no bearer token was presented")                                            \
    X(malformed, "the token is not a well-formed compact JWS")                                   \
    X(unknown_key, "no configured key matches the token's kid")                                  \
    X(algorithm_not_allowed, "the token's alg is not the one pinned to its key")                 \
    X(invalid_signature, "the signature does not verify")                                        \
    X(invalid_claims, "a required claim is missing or has the wrong type")                       \
    X(invalid_issuer, "the token's iss is not a configured issuer")                              \
    X(invalid_audience, "the token's aud does not contain an accepted audience")                 \
    X(lifetime_exceeded, "exp - iat exceeds the configured maximum token lifetime")              \
    X(expired, "the token has expired")                                                          \
    X(not_yet_valid, "the token is not valid yet (nbf or iat in the future)")                    \
    X(revoked, "the token has been revoked")

#define JWT_REASON_ENUM(name, text) JWT_##name,
enum jwt_reason { JWT_OK = 0, JWT_REASON_TABLE(JWT_REASON_ENUM) JWT_REASON_COUNT };
#undef JWT_REASON_ENUM

/* Not a reason to refuse the token: its issuer has no keys yet (a key set
 * not fetched so far), so whether it is genuine is unknown, and the answer
 * is 503, never "active" and never "invalid". */
#define JWT_ENOKEYS (JWT_REASON_COUNT + 2)

const char *jwt_reason_name(int reason);
const char *jwt_reason_text(int reason);

/* Longest jti, sub, iss, kid or client_id accepted, in bytes. */
#define JWT_STR_MAX 256
/* Longest scope claim, and longest aud list (its members joined by '\n'),
 * in bytes; a token with more is refused (invalid_claims). */
#define JWT_SCOPE_MAX 2048
#define JWT_AUD_MAX 1024

/* One issuer's rules and keys. */
struct jwt_policy {
    const struct jwks *keys; /* NULL: none yet (a key set not fetched so far) */
    const char *issuer;      /* the iss its tokens carry; "": any iss, or none */
    char *const *audiences;  /* the token's aud must hold one of them; none: any */
    size_t n_audiences;
    int64_t leeway;
    int64_t max_lifetime;
};

/* Every issuer trusted. A token is matched to its issuer by its iss before
 * a key is chosen, so one issuer's key never verifies another's token. */
struct jwt_trust {
    const struct jwt_policy *issuers;
    size_t n;
    size_t max_token_bytes;
};

struct jwt_claims {
    char jti[JWT_STR_MAX + 1]; /* the claim, or "sha256:" + digest of the signing input */
    char sub[JWT_STR_MAX + 1];
    char iss[JWT_STR_MAX + 1];
    bool has_sub, has_iss, jti_derived;
    int64_t exp, iat, nbf;
    bool has_nbf;
    /* What gateways pass on (route_authz.c): "" when absent. */
    char scope[JWT_SCOPE_MAX + 1];   /* the scope claim, space-separated */
    char client_id[JWT_STR_MAX + 1]; /* the client_id claim, else azp */
    char aud[JWT_AUD_MAX + 1];       /* the aud members, joined by '\n' */
    int64_t leeway; /* the issuer's, for jwt_check_times() */
    int issuer;     /* the index of the token's issuer in the trust; -1 when none matched */
};

/* Checks token (len bytes, no NUL needed) against trust: form, issuer,
 * key, alg, signature, claim types, aud and lifetime. Time is not looked
 * at; call jwt_check_times() for that. Returns 0 with *out filled, or
 * -reason with out->issuer set once the issuer is known (a caller may fetch
 * that issuer's keys anew on -JWT_unknown_key). */
int jwt_verify(const struct jwt_trust *trust, const char *token, size_t len, struct jwt_claims *out);

/* Whether the token's aud holds aud; whether its scope holds the scope of
 * len bytes (a word of the space-separated list, RFC 9068). */
bool jwt_audience_has(const struct jwt_claims *c, const char *aud);
bool jwt_scope_has(const struct jwt_claims *c, const char *scope, size_t len);

/* Returns 0, -JWT_expired or -JWT_not_yet_valid for the claims at now,
 * within their issuer's leeway. */
int jwt_check_times(const struct jwt_claims *c, int64_t now);

/* The id of a token without jti: "sha256:" + base64url(SHA-256(header.payload)),
 * the JWS signing input exactly as the token carries it. */
#define JWT_DERIVED_PREFIX "sha256:"

#endif
