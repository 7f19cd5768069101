/* check.h - the revocation decision for one token: genuine, current, and
 * not revoked. Shared by /v1/check and the endpoints that act for a token's
 * holder. */
#ifndef REVOKD_CHECK_H
#define REVOKD_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "revokd/app.h"
#include "revokd/jwt_verify.h"
#include "revokd/router.h"

/* The store could not answer: the state is unknown. */
#define CHECK_ESTORE (JWT_REASON_COUNT + 1)

/* Is token genuine and current at now? Signature and claims are checked,
 * or taken from the cache of tokens that verified before; exp and nbf are
 * judged every time. Returns 0 with *c filled, or -reason (JWT_*); *c is
 * filled as far as the token could be read. No store access. */
int check_verify(struct app *app, const char *token, size_t len, int64_t now, struct jwt_claims *c);

/* Asks the store whether req->claims is revoked (its jti, or its subject
 * since iat); then(req, rep, result) receives the answer, which
 * check_result() turns into 0, -JWT_revoked or -CHECK_ESTORE. */
void check_revoked(struct request *req,
                   void (*then)(struct request *req, struct reply *rep, const struct store_result *res));
int check_result(const struct store_result *res);

/* The Redis namespace of a token: its iss, or "" without one. */
const char *check_namespace(const struct jwt_claims *c);

#endif
