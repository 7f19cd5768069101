/* route_revoke.c - the holder's own revocations: POST /v1/revoke (one token,
 * possession is the right) and POST /v1/revoke-all (every token of the
 * holder's subject: "log out from all devices"). */
#include <string.h>

#include "revokd/check.h"
#include "revokd/reply.h"

static void reply_revoked(struct reply *rep, const char *jti, int64_t expires_at, bool expired)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "revoked");
    cJSON_AddStringToObject(body, "jti", jti);
    cJSON_AddNumberToObject(body, "expires_at", (double)expires_at);
    cJSON_AddBoolToObject(body, "expired", expired);
    reply_json(rep, 200, body);
}

void revoke_jti_and_reply(struct request *req, struct reply *rep, const char *iss, const char *jti,
                          int64_t exp, const char *reason)
{
    /* Keep the record as long as a check could still accept the token. */
    int64_t expires_at = exp + req->app->policy.leeway;
    int rc;

    reply_log(rep, "jti", jti);
    if (expires_at <= req->now) {
        reply_revoked(rep, jti, expires_at, true); /* nothing to store: it is dead already */
        return;
    }
    if ((rc = store_revoke_jti(req->app->store, iss, jti, expires_at, reason)) < 0) {
        reply_log(rep, "store_error", store_errstr(req->app->store));
        reply_store_error(rep, rc);
        return;
    }
    reply_revoked(rep, jti, expires_at, false);
}

void route_revoke(struct request *req, struct reply *rep)
{
    const char *token = NULL;
    struct jwt_claims c;
    cJSON *body = reply_parse_body(req, rep, 0);
    int rc;

    if (body == NULL)
        return;
    if (json_string(body, "token", req->app->cfg->max_body_bytes, &token) != 1) {
        reply_error(rep, 400, "invalid_request", "the body needs a \"token\" string");
        goto out;
    }
    /* Genuine and ours (signature, iss, aud, lifetime); nbf is not asked:
     * a token not valid yet may well be revoked ahead. */
    if ((rc = jwt_verify(&req->app->policy, token, strlen(token), &c)) < 0) {
        reply_token_failure(rep, rc, &c);
        goto out;
    }
    if (c.has_sub)
        reply_log(rep, "sub", c.sub);
    revoke_jti_and_reply(req, rep, check_namespace(&c), c.jti, c.exp, NULL);
out:
    cJSON_Delete(body);
}

void revoke_all_and_reply(struct request *req, struct reply *rep, const char *iss, const char *sub)
{
    const struct jwt_policy *p = &req->app->policy;
    /* Any token of sub issued up to now lives at most max_lifetime (longer
     * ones are refused), plus leeway; the record may go after that. */
    int64_t ttl = p->max_lifetime + p->leeway, effective = 0;
    int rc;

    reply_log(rep, "sub", sub);
    if ((rc = store_revoke_all(req->app->store, iss, sub, req->now, ttl, &effective)) < 0) {
        reply_log(rep, "store_error", store_errstr(req->app->store));
        reply_store_error(rep, rc);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "revoked_all");
    cJSON_AddStringToObject(body, "sub", sub);
    cJSON_AddNumberToObject(body, "cutoff", (double)effective);
    cJSON_AddNumberToObject(body, "expires_at", (double)(req->now + ttl));
    reply_json(rep, 200, body);
}

void route_revoke_all(struct request *req, struct reply *rep)
{
    const char *token;
    size_t len;
    struct jwt_claims c;
    int rc;

    /* No body is needed; one that is sent must still be well-formed JSON. */
    cJSON *body = reply_parse_body(req, rep, 1);
    cJSON_Delete(body);
    if (rep->status != 0)
        return;
    if (request_bearer(req, &token, &len) < 0) {
        reply_token_failure(rep, -JWT_missing_token, NULL);
        return;
    }
    /* Only an active token may log its subject out everywhere: a leaked but
     * already revoked one must not become a way to annoy its owner. */
    rc = check_token(req->app, token, len, req->now, &c);
    if (rc == -CHECK_ESTORE) {
        reply_store_error(rep, -STORE_EUNAVAILABLE);
        return;
    }
    if (rc == 0 && !c.has_sub)
        rc = -JWT_invalid_claims;
    if (rc < 0) {
        reply_token_failure(rep, rc, &c);
        return;
    }
    revoke_all_and_reply(req, rep, check_namespace(&c), c.sub);
}
