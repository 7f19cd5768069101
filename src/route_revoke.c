/* route_revoke.c - the holder's own revocations: POST /v1/revoke (one token,
 * possession is the right) and POST /v1/revoke-all (every token of the
 * holder's subject: "log out from all devices"). The store calls here are
 * shared with the admin routes. */
#include <stdio.h>
#include <string.h>

#include "revokd/check.h"
#include "revokd/metrics.h"
#include "revokd/reply.h"

/* Copies s into a claims field unless it is that field already. */
static void keep(char *field, const char *s)
{
    if (field != s)
        snprintf(field, JWT_STR_MAX + 1, "%s", s);
}

/* Keeps the namespace acted in, for the answer: the body it may point into
 * is gone by the time Redis answers. */
static void keep_namespace(struct request *req, const char *iss)
{
    keep(req->claims.iss, iss);
    req->claims.has_iss = iss[0] != '\0';
}

/* Every answer to a revocation says which issuer's tokens it reached:
 * "iss", null for the tokens without iss. */
static void add_namespace(cJSON *body, const struct jwt_claims *c)
{
    if (c->has_iss)
        cJSON_AddStringToObject(body, "iss", c->iss);
    else
        cJSON_AddNullToObject(body, "iss");
}

static void reply_revoked(struct reply *rep, const struct jwt_claims *c, const char *jti,
                          int64_t expires_at, bool expired)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "revoked");
    cJSON_AddStringToObject(body, "jti", jti);
    add_namespace(body, c);
    cJSON_AddNumberToObject(body, "expires_at", (double)expires_at);
    cJSON_AddBoolToObject(body, "expired", expired);
    reply_json(rep, 200, body);
}

static void stored_jti(struct request *req, struct reply *rep, const struct store_result *res)
{
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return;
    }
    metrics_revocation(METRICS_REVOKE_TOKEN, req->admin);
    reply_revoked(rep, &req->claims, req->claims.jti, req->claims.exp, false);
}

void revoke_jti_and_reply(struct request *req, struct reply *rep, const char *iss, const char *jti,
                          int64_t exp, const char *reason)
{
    /* Keep the record as long as a check could still accept the token. */
    int64_t expires_at = exp + req->app->policy.leeway;

    reply_log(rep, "jti", jti);
    keep_namespace(req, iss);
    if (expires_at <= req->now) {
        /* nothing to store: it is dead already */
        reply_revoked(rep, &req->claims, jti, expires_at, true);
        return;
    }
    /* The body that jti may point into is gone by the time Redis answers. */
    keep(req->claims.jti, jti);
    req->claims.exp = expires_at; /* what the reply reports */
    req->then = stored_jti;
    store_revoke_jti(req->store, iss, jti, expires_at, reason, request_store_done, req);
}

static void revoke_verified(struct request *req, struct reply *rep, int rc)
{
    struct jwt_claims *c = &req->claims;

    if (rc < 0) {
        reply_token_failure(rep, rc, c);
        return;
    }
    if (c->has_sub)
        reply_log(rep, "sub", c->sub);
    revoke_jti_and_reply(req, rep, check_namespace(c), c->jti, c->exp, NULL);
}

void route_revoke(struct request *req, struct reply *rep)
{
    const char *token = NULL;
    cJSON *body = reply_parse_body(req, rep, 0);

    if (body == NULL)
        return;
    if (json_string(body, "token", req->app->cfg->max_body_bytes, &token) != 1) {
        reply_error(rep, 400, "invalid_request", "the body needs a \"token\" string");
        return;
    }
    /* Genuine and ours (signature, iss, aud, lifetime); exp and nbf are not
     * asked: an expired token is answered as such, and one not valid yet
     * may well be revoked ahead. */
    check_verify(req, token, strlen(token), false, revoke_verified);
}

/* A revoke-all made now revokes every token issued up to now + leeway: a
 * token stamped by an issuer whose clock runs fast, within the leeway, is
 * accepted now, and a cutoff of now would leave it active. The price is
 * that tokens issued in the next leeway seconds are refused too, which the
 * answer's cutoff tells the client. */
static int64_t revoke_all_cutoff(const struct request *req)
{
    return req->now + req->app->policy.leeway;
}

static int64_t revoke_all_ttl(const struct request *req)
{
    const struct jwt_policy *p = &req->app->policy;
    /* A token issued at the cutoff lives at most max_lifetime (longer ones
     * are refused), plus leeway; the record may go after that. */
    return revoke_all_cutoff(req) - req->now + p->max_lifetime + p->leeway;
}

static void stored_cutoff(struct request *req, struct reply *rep, const struct store_result *res)
{
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return;
    }
    metrics_revocation(METRICS_REVOKE_SUBJECT, req->admin);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "revoked_all");
    cJSON_AddStringToObject(body, "sub", req->claims.sub);
    add_namespace(body, &req->claims);
    cJSON_AddNumberToObject(body, "cutoff", (double)res->cutoff);
    cJSON_AddNumberToObject(body, "expires_at", (double)(req->now + revoke_all_ttl(req)));
    reply_json(rep, 200, body);
}

void revoke_all_and_reply(struct request *req, struct reply *rep, const char *iss, const char *sub)
{
    reply_log(rep, "sub", sub);
    keep(req->claims.sub, sub);
    keep_namespace(req, iss);
    req->then = stored_cutoff;
    store_revoke_all(req->store, iss, sub, revoke_all_cutoff(req), revoke_all_ttl(req),
                     request_store_done, req);
}

static void holder_checked(struct request *req, struct reply *rep, const struct store_result *res)
{
    int rc = check_result(res);

    if (rc == -CHECK_ESTORE) {
        reply_store_failed(rep, res);
    } else if (rc < 0) {
        reply_token_failure(rep, rc, &req->claims);
    } else {
        revoke_all_and_reply(req, rep, check_namespace(&req->claims), req->claims.sub);
    }
}

static void holder_verified(struct request *req, struct reply *rep, int rc)
{
    if (rc == 0 && !req->claims.has_sub)
        rc = -JWT_invalid_claims;
    if (rc < 0) {
        reply_token_failure(rep, rc, &req->claims);
        return;
    }
    /* Only an active token may log its subject out everywhere: a leaked but
     * already revoked one must not become a way to annoy its owner. */
    check_revoked(req, holder_checked);
}

void route_revoke_all(struct request *req, struct reply *rep)
{
    const char *token;
    size_t len;

    /* No body is needed; one that is sent must still be well-formed JSON. */
    reply_parse_body(req, rep, 1);
    if (rep->status != 0)
        return;
    if (request_bearer(req, &token, &len) < 0) {
        reply_token_failure(rep, -JWT_missing_token, NULL);
        return;
    }
    check_verify(req, token, len, true, holder_verified);
}
