/* route_check.c - GET/POST /v1/check: is this token (or this jti/subject)
 * revoked? The forward-auth endpoint of gateways: 200 lets the request
 * through, 401 refuses it, 503 means the answer is unknown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/check.h"
#include "revokd/metrics.h"
#include "revokd/routes.h"
#include "revokd/url.h"
#include "revokd/utf8.h"

static enum request_step checked(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct jwt_claims *c = &req->claims;
    int rc = check_result(rep, res, c);

    metrics_check(rc);
    if (rc == 0)
        check_reply_active(rep, c);
    return REQUEST_DONE;
}

static enum request_step verified(struct request *req, struct reply *rep, int rc)
{
    return check_verified(rep, rc, &req->claims) < 0 ? REQUEST_DONE : check_revoked(req, checked);
}

static enum request_step looked_up(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct jwt_claims *c = &req->claims;
    int rc = check_result(rep, res, c);

    metrics_check(rc);
    if (rc < 0)
        return REQUEST_DONE;
    reply_begin(rep, 200);
    reply_bool(rep, "active", true);
    if (c->jti[0] != '\0')
        reply_string(rep, "jti", c->jti);
    if (c->has_sub)
        reply_string(rep, "sub", c->sub);
    return REQUEST_DONE;
}

/* GET /v1/check?jti=&sub=&iat=&iss=: for gateways that verified the JWT
 * themselves and only ask about revocation. */
static enum request_step check_lookup(struct request *req, struct reply *rep)
{
    struct jwt_claims *c = &req->claims;
    char iat[24];
    int has_jti = request_query(req, "jti", c->jti, sizeof(c->jti));
    int has_sub = request_query(req, "sub", c->sub, sizeof(c->sub));
    int has_iat = request_query(req, "iat", iat, sizeof(iat));
    const char *raw;
    size_t rawlen;
    /* iss= (empty) names the tokens without iss. */
    int has_iss = url_query_find(req->query, "iss", &raw, &rawlen) == 1 && rawlen == 0
                      ? (c->iss[0] = '\0', 1)
                      : request_query(req, "iss", c->iss, sizeof(c->iss));

    if (has_jti < 0 || has_sub < 0 || has_iat < 0 || has_iss < 0) {
        reply_error(rep, 400, "invalid_request",
                    "jti, sub and iss must be 1 to 256 bytes of UTF-8 text and iat at most 23 "
                    "digits, each given once and validly percent-encoded");
        return REQUEST_DONE;
    }
    if (has_sub && !has_iat) {
        reply_error(rep, 400, "invalid_request", "iat is required with sub");
        return REQUEST_DONE;
    }
    if (has_iat) {
        char *end;
        errno = 0;
        long long v = strtoll(iat, &end, 10);
        if (errno != 0 || *end != '\0' || end == iat || v < 0) {
            reply_error(rep, 400, "invalid_request", "iat must be a non-negative integer");
            return REQUEST_DONE;
        }
        c->iat = v;
    }
    if (!has_iss && req->app->cfg->issuer[0] == '\0') {
        reply_error(rep, 400, "invalid_request", ISSUER_REQUIRED);
        return REQUEST_DONE;
    }
    if (!has_iss)
        snprintf(c->iss, sizeof(c->iss), "%s", req->app->cfg->issuer);
    c->has_iss = true;
    c->has_sub = has_sub;
    if (has_jti)
        reply_log(rep, "jti", c->jti);
    if (has_sub)
        reply_log(rep, "sub", c->sub);
    /* Without a jti, the jti record looked up is one no token can have:
     * "" is not a valid jti claim. */
    return check_revoked(req, looked_up);
}

enum request_step route_check_get(struct request *req, struct reply *rep)
{
    const char *token;
    size_t len;

    if (url_query_find(req->query, "jti", &token, &len) > 0 ||
        url_query_find(req->query, "sub", &token, &len) > 0)
        return check_lookup(req, rep);
    if (request_bearer(req, &token, &len) < 0) {
        reply_token_failure(rep, -JWT_missing_token, NULL);
        return REQUEST_DONE;
    }
    return check_verify(req, token, len, true, verified);
}

enum request_step route_check_post(struct request *req, struct reply *rep)
{
    const char *token = NULL;

    if (request_body(req, rep, false) < 0)
        return REQUEST_DONE;
    /* The token's own bound (max_token_bytes) applies inside jwt_verify;
     * here anything up to the body limit is accepted as a string. */
    if (request_body_string(req, "token", req->app->cfg->max_body_bytes, &token) != 1) {
        reply_error(rep, 400, "invalid_request", "the body needs a \"token\" string");
        return REQUEST_DONE;
    }
    return check_verify(req, token, strlen(token), true, verified);
}
