/* route_admin.c - the admin API: revoke a jti without the token, and revoke
 * every token of a subject ("log out from all devices"). Both need an admin
 * key; with none configured they refuse every call. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "revokd/revoke.h"
#include "revokd/routes.h"

/* Returns 0 when the caller holds an admin key, else replies and returns -1. */
static int authorize(struct request *req, struct reply *rep)
{
    const char *key;
    size_t len;

    if (req->app->admins == NULL) {
        reply_error(rep, 403, "admin_disabled", "no admin keys are configured (REVOKD_ADMIN_KEYS_FILE)");
        return -1;
    }
    if (request_bearer(req, &key, &len) < 0 || !admin_keys_check(req->app->admins, key, len)) {
        reply_error(rep, 401, "unauthorized", "a valid admin key is required (Authorization: Bearer)");
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Bearer realm=\"revokd-admin\"");
        return -1;
    }
    req->admin = true;
    return 0;
}

/* The namespace to act in: the body's "iss" (null for the tokens without
 * iss), else REVOKD_ISSUER. Returns NULL after replying 400 when "iss" is
 * not valid, or absent with no REVOKD_ISSUER (ISSUER_REQUIRED). */
static const char *namespace_of(struct request *req, struct reply *rep)
{
    const char *iss = req->app->cfg->issuer;
    int rc = request_body_id(req, "iss", &iss);

    if (rc < 0 && request_body_null(req, "iss"))
        return "";
    if (rc < 0) {
        reply_error(rep, 400, "invalid_request", "iss must be 1 to 256 bytes of text, or null");
        return NULL;
    }
    if (rc == 0 && iss[0] == '\0') {
        reply_error(rep, 400, "invalid_request", ISSUER_REQUIRED);
        return NULL;
    }
    return iss;
}

enum request_step route_admin_revoke(struct request *req, struct reply *rep)
{
    const char *jti = NULL, *reason = NULL, *iss;
    const struct jwt_policy *p = &req->app->policy;
    double exp = -1;

    if (authorize(req, rep) < 0 || request_body(req, rep, false) < 0 ||
        (iss = namespace_of(req, rep)) == NULL)
        return REQUEST_DONE;
    if (request_body_id(req, "jti", &jti) != 1 ||
        request_body_string(req, "reason", JWT_STR_MAX, &reason) < 0) {
        reply_error(rep, 400, "invalid_request",
                    "jti must be 1 to 256 bytes of text, and reason, if given, a string of 1 to 256 bytes");
        return REQUEST_DONE;
    }
    if (request_body_number(req, "exp", &exp) != 1 || exp != floor(exp) || exp < 0) {
        reply_error(rep, 400, "invalid_request", "exp must be the token's expiry, unix seconds");
        return REQUEST_DONE;
    }
    /* No token lives longer than max_lifetime, so a later exp is a mistake,
     * and accepting it would let one call pin a record for years. */
    if (exp > (double)(req->now + p->max_lifetime + p->leeway)) {
        reply_error(rep, 400, "invalid_request", "exp is beyond now + REVOKD_MAX_TOKEN_LIFETIME");
        return REQUEST_DONE;
    }
    if (reason != NULL)
        reply_log(rep, "revoke_reason", reason);
    return revoke_jti(req, rep, iss, jti, (int64_t)exp, reason);
}

enum request_step route_admin_revoke_all(struct request *req, struct reply *rep)
{
    const char *reason = NULL, *iss;

    if (authorize(req, rep) < 0 || request_body(req, rep, true) < 0 ||
        (iss = namespace_of(req, rep)) == NULL)
        return REQUEST_DONE;
    if (request_body_string(req, "reason", JWT_STR_MAX, &reason) < 0) {
        reply_error(rep, 400, "invalid_request", "reason must be a string of 1 to 256 bytes");
        return REQUEST_DONE;
    }
    if (strlen(req->param) > JWT_STR_MAX) {
        reply_error(rep, 400, "invalid_request", "the subject is longer than 256 bytes");
        return REQUEST_DONE;
    }
    if (reason != NULL)
        reply_log(rep, "revoke_reason", reason);
    return revoke_all(req, rep, iss, req->param);
}
