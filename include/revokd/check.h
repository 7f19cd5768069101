/* check.h - the revocation decision for one token: genuine, current, and
 * not revoked. Shared by /v1/check and the endpoints that act for a token's
 * holder. */
#ifndef REVOKD_CHECK_H
#define REVOKD_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/jwt.h"
#include "revokd/metrics.h"
#include "revokd/request.h"

/* The store could not answer: the state is unknown (counted as such by
 * metrics_check()). */
#define CHECK_ESTORE METRICS_CHECK_UNKNOWN

/* Is token genuine (signature and claims), and with times also current
 * (exp, nbf) at req->now? then(req, rep, rc) receives 0 with req->claims
 * filled, or -reason (JWT_*) with req->claims filled as far as the token
 * could be read. A token the cache of verified tokens knows is judged at
 * once, on this thread, and so is any while the pool is backlogged (under
 * a flood of tokens to verify the loop helps); any other is verified on a
 * pool thread while the request waits, so a signature check never stalls
 * the worker's other requests. Returns then's step, or REQUEST_WAIT. token
 * must stay valid until then runs. */
enum request_step check_verify(struct request *req, const char *token, size_t len, bool times,
                               enum request_step (*then)(struct request *req, struct reply *rep, int rc));

/* Asks the store whether req->claims is revoked (its jti, or its subject
 * since iat); then(req, rep, result) receives the answer, which
 * check_result() reads. */
enum request_step check_revoked(struct request *req, request_store_then then);
/* 0 when the store says the token c is not revoked; else -JWT_revoked or
 * -CHECK_ESTORE, with that answer replied. */
int check_result(struct reply *rep, const struct store_result *res, const struct jwt_claims *c);

/* What a check does once the token was judged (check_verify's rc): its ids
 * go into the request line; a refused token is counted and answered.
 * Returns rc. */
int check_verified(struct reply *rep, int rc, const struct jwt_claims *c);

/* 200 {"active": true, "jti", "sub", "iss", "exp", "iat"} for the token c
 * (sub and iss when it has them). */
void check_reply_active(struct reply *rep, const struct jwt_claims *c);

/* The store namespace of a token: its iss, or "" without one. */
const char *check_namespace(const struct jwt_claims *c);

#endif
