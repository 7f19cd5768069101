/* check.h - the revocation decision for one token: genuine, current, and
 * not revoked. Shared by /v1/check and the endpoints that act for a token's
 * holder. */
#ifndef REVOKD_CHECK_H
#define REVOKD_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "revokd/app.h"
#include "revokd/jwt_verify.h"

/* Returned when the store could not answer: the state is unknown. */
#define CHECK_ESTORE (JWT_REASON_COUNT + 1)

/* Verifies token and looks its revocation up (one Redis round trip).
 * Returns 0 when the token is active, -reason (JWT_*) when it is not, or
 * -CHECK_ESTORE. *c is filled as far as the token could be read. */
int check_token(struct app *app, const char *token, size_t len, int64_t now, struct jwt_claims *c);

/* The Redis namespace of a token: its iss, or "" without one. */
const char *check_namespace(const struct jwt_claims *c);

#endif
