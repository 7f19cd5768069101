/* check.c - is this token active? Signature and claims first (no store
 * access for a forged token), then one lookup of both the jti record and the
 * subject's revoke-all cutoff. */
#include "revokd/check.h"

#include <stdbool.h>

const char *check_namespace(const struct jwt_claims *c)
{
    return c->has_iss ? c->iss : "";
}

int check_token(struct app *app, const char *token, size_t len, int64_t now, struct jwt_claims *c)
{
    bool revoked = false;
    int rc = jwt_verify(&app->policy, token, len, c);

    if (rc == 0)
        rc = jwt_check_times(&app->policy, c, now);
    if (rc < 0)
        return rc;
    /* Fail closed: an unknown state is never reported as active. */
    if (store_is_revoked(app->store, check_namespace(c), c->jti, c->has_sub ? c->sub : NULL, c->iat,
                         &revoked) < 0)
        return -CHECK_ESTORE;
    return revoked ? -JWT_revoked : 0;
}
