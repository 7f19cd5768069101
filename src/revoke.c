/* revoke.c - store a revocation, then answer with what it reached; see
 * revoke.h. */
#include "revokd/revoke.h"

#include <assert.h>
#include <stdio.h>

#include "revokd/keyring.h"
#include "revokd/metrics.h"

/* Copies s into a claims field unless it is that field already: what the
 * answer reports must outlive the body s may point into. */
static void keep(char *field, const char *s)
{
    if (field != s)
        snprintf(field, JWT_STR_MAX + 1, "%s", s);
}

static void keep_namespace(struct request *req, const char *iss)
{
    keep(req->claims.iss, iss);
    req->claims.has_iss = iss[0] != '\0';
}

/* Every answer to a revocation says which issuer's tokens it reached:
 * "iss", null for the tokens without iss. */
static void reply_namespace(struct reply *rep, const struct jwt_claims *c)
{
    if (c->has_iss)
        reply_string(rep, "iss", c->iss);
    else
        reply_null(rep, "iss");
}

static enum request_step reply_revoked(struct reply *rep, const struct jwt_claims *c, int64_t expires_at,
                                       bool expired)
{
    reply_begin(rep, 200);
    reply_bool(rep, "revoked", true);
    reply_string(rep, "jti", c->jti);
    reply_namespace(rep, c);
    reply_int(rep, "expires_at", expires_at);
    reply_bool(rep, "expired", expired);
    return REQUEST_DONE;
}

static enum request_step stored_jti(struct request *req, struct reply *rep, const struct store_result *res)
{
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return REQUEST_DONE;
    }
    metrics_revocation(METRICS_REVOKE_TOKEN, req->admin);
    return reply_revoked(rep, &req->claims, req->claims.exp, false);
}

enum request_step revoke_jti(struct request *req, struct reply *rep, const char *iss, const char *jti,
                             int64_t exp, const char *reason)
{
    int64_t leeway, max_lifetime;

    keyring_limits(req->app->keys, iss, &leeway, &max_lifetime);
    /* Keep the record as long as a check could still accept the token. */
    int64_t expires_at = exp + leeway;

    reply_log(rep, "jti", jti);
    keep(req->claims.jti, jti);
    keep_namespace(req, iss);
    if (expires_at <= req->now) /* nothing to store: it is dead already */
        return reply_revoked(rep, &req->claims, expires_at, true);
    req->claims.exp = expires_at; /* what the reply reports */
    assert(req->by[0] != '\0'); /* every route that revokes says who */
    struct store_call call = {.op = STORE_REVOKE_JTI, .iss = req->claims.iss, .jti = req->claims.jti,
                              .expires_at = expires_at, .reason = reason, .by = req->by,
                              .retention_ms = keyring_log_retention(req->app->keys) * 1000};
    return request_wait_store(req, &call, stored_jti);
}

static enum request_step stored_cutoff(struct request *req, struct reply *rep, const struct store_result *res)
{
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return REQUEST_DONE;
    }
    metrics_revocation(METRICS_REVOKE_SUBJECT, req->admin);
    if (req->no_content) {
        reply_empty(rep, 204);
        return REQUEST_DONE;
    }
    reply_begin(rep, 200);
    reply_bool(rep, "revoked_all", true);
    reply_string(rep, "sub", req->claims.sub);
    reply_namespace(rep, &req->claims);
    reply_int(rep, "cutoff", res->cutoff);
    reply_int(rep, "expires_at", req->claims.exp);
    return REQUEST_DONE;
}

enum request_step revoke_all(struct request *req, struct reply *rep, const char *iss, const char *sub,
                             const char *reason)
{
    int64_t leeway, max_lifetime;

    reply_log(rep, "sub", sub);
    keep(req->claims.sub, sub);
    keep_namespace(req, iss);
    keyring_limits(req->app->keys, iss, &leeway, &max_lifetime);
    /* The cutoff is now + leeway: a token stamped by an issuer whose clock
     * runs fast, within the leeway, is accepted now, and a cutoff of now
     * would leave it active. The price is that tokens issued in the next
     * leeway seconds are refused too, which the answer's cutoff tells the
     * client. A token issued at the cutoff lives at most max_lifetime
     * (longer ones are refused), plus leeway; the record may go after
     * that. */
    int64_t cutoff = req->now + leeway, ttl = cutoff - req->now + max_lifetime + leeway;
    req->claims.exp = req->now + ttl; /* what the reply reports */
    assert(req->by[0] != '\0');
    struct store_call call = {.op = STORE_REVOKE_ALL, .iss = req->claims.iss, .sub = req->claims.sub,
                              .cutoff = cutoff, .ttl = ttl, .reason = reason, .by = req->by,
                              .retention_ms = keyring_log_retention(req->app->keys) * 1000};
    return request_wait_store(req, &call, stored_cutoff);
}
