/* route_revoke.c - the holder's own revocations: POST /v1/revoke (one token,
 * possession is the right) and POST /v1/revoke-all (every token of the
 * holder's subject: "log out from all devices"). */
#include <stdio.h>
#include <string.h>

#include "revokd/check.h"
#include "revokd/revoke.h"
#include "revokd/routes.h"

static enum request_step revoke_verified(struct request *req, struct reply *rep, int rc)
{
    struct jwt_claims *c = &req->claims;

    if (rc < 0) {
        reply_token_failure(rep, rc, c);
        return REQUEST_DONE;
    }
    if (c->has_sub)
        reply_log(rep, "sub", c->sub);
    return revoke_jti(req, rep, check_namespace(c), c->jti, c->exp, NULL);
}

enum request_step route_revoke(struct request *req, struct reply *rep)
{
    const char *token = NULL;

    snprintf(req->by, sizeof(req->by), "holder");
    if (request_body(req, rep, false) < 0)
        return REQUEST_DONE;
    if (request_body_string(req, "token", req->app->cfg->max_body_bytes, &token) != 1) {
        reply_error(rep, 400, "invalid_request", "the body needs a \"token\" string");
        return REQUEST_DONE;
    }
    /* Genuine and ours (signature, iss, aud, lifetime); exp and nbf are not
     * asked: an expired token is answered as such, and one not valid yet
     * may well be revoked ahead. */
    return check_verify(req, token, strlen(token), false, revoke_verified);
}

static enum request_step holder_checked(struct request *req, struct reply *rep,
                                        const struct store_result *res)
{
    if (check_result(rep, res, &req->claims) < 0)
        return REQUEST_DONE;
    return revoke_all(req, rep, check_namespace(&req->claims), req->claims.sub, NULL);
}

static enum request_step holder_verified(struct request *req, struct reply *rep, int rc)
{
    if (rc == 0 && !req->claims.has_sub)
        rc = -JWT_invalid_claims;
    if (rc < 0) {
        reply_token_failure(rep, rc, &req->claims);
        return REQUEST_DONE;
    }
    /* Only an active token may log its subject out everywhere: a leaked but
     * already revoked one must not become a way to annoy its owner. */
    return check_revoked(req, holder_checked);
}

enum request_step route_revoke_all(struct request *req, struct reply *rep)
{
    const char *token;
    size_t len;

    snprintf(req->by, sizeof(req->by), "holder");
    /* No body is needed; one that is sent must still be well-formed JSON. */
    if (request_body(req, rep, true) < 0)
        return REQUEST_DONE;
    if (request_bearer(req, &token, &len) < 0) {
        reply_token_failure(rep, -JWT_missing_token, NULL);
        return REQUEST_DONE;
    }
    return check_verify(req, token, len, true, holder_verified);
}
