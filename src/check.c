/* check.c - is this token active? Signature and claims first (no store
 * access for a forged token), then one lookup of both the jti record and the
 * subject's revoke-all cutoff. */
#include "revokd/check.h"

#include <stddef.h>

#include "revokd/metrics.h"

const char *check_namespace(const struct jwt_claims *c)
{
    return c->has_iss ? c->iss : "";
}

/* The full check of a token the cache did not know: on a pool thread, while
 * the request waits and nothing else touches it, or on the loop. */
static void verify_run(struct work *w)
{
    struct request *req = (struct request *)((char *)w - offsetof(struct request, verify.work));
    struct app *app = req->app;
    /* Read before the keys are: see token_cache_generation(). */
    uint64_t generation = token_cache_generation(app->cache);
    int rc = keyring_verify(app->keys, req->verify.token, req->verify.len, &req->claims);

    /* Past exp + leeway the token cannot pass jwt_check_times again. */
    if (rc == 0 && req->verify.cacheable)
        token_cache_put(app->cache, req->verify.key, &req->claims, req->claims.exp + req->claims.leeway,
                        generation);
    if (rc == 0 && req->verify.times)
        rc = jwt_check_times(&req->claims, req->now);
    req->verify.rc = rc;
}

/* Back on the worker's thread. */
static enum request_step verified(struct request *req, struct reply *rep)
{
    return req->verify.then(req, rep, req->verify.rc);
}

enum request_step check_verify(struct request *req, const char *token, size_t len, bool times,
                               enum request_step (*then)(struct request *req, struct reply *rep, int rc))
{
    struct app *app = req->app;
    /* A token longer than the limit is refused by jwt_verify before any
     * work; it must not cost a hash here either, nor any token when there
     * is no cache. */
    bool cacheable = len <= (size_t)app->cfg->max_token_bytes && token_cache_capacity(app->cache) > 0;

    if (cacheable) {
        token_cache_key(token, len, req->verify.key);
        bool hit = token_cache_get(app->cache, req->verify.key, req->now, &req->claims);
        metrics_cache(hit);
        if (hit)
            return then(req, &req->reply, times ? jwt_check_times(&req->claims, req->now) : 0);
    }
    req->verify.token = token;
    req->verify.len = len;
    req->verify.times = times;
    req->verify.cacheable = cacheable;
    req->verify.then = then;
    req->verify.work.run = verify_run;
    if (work_backlogged(req->inbox)) {
        /* A flood of tokens to verify (forged ones never enter the cache):
         * the loop's other requests are mostly the same, so it verifies too
         * rather than let the queue grow. */
        verify_run(&req->verify.work);
        return verified(req, &req->reply);
    }
    return request_wait_work(req, &req->verify.work, verified);
}

enum request_step check_revoked(struct request *req, request_store_then then)
{
    const struct jwt_claims *c = &req->claims;
    struct store_call call = {
        .op = STORE_IS_REVOKED,
        .iss = check_namespace(c),
        .jti = c->jti,
        .sub = c->has_sub ? c->sub : NULL,
        .iat = c->iat,
    };
    return request_wait_store(req, &call, then);
}

int check_result(struct reply *rep, const struct store_result *res, const struct jwt_claims *c)
{
    /* Fail closed: an unknown state is never reported as active. */
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return -CHECK_ESTORE;
    }
    if (res->revoked) {
        reply_token_failure(rep, -JWT_revoked, c);
        return -JWT_revoked;
    }
    return 0;
}

void check_reply_active(struct reply *rep, const struct jwt_claims *c)
{
    reply_begin(rep, 200);
    reply_bool(rep, "active", true);
    reply_string(rep, "jti", c->jti);
    if (c->has_sub)
        reply_string(rep, "sub", c->sub);
    if (c->has_iss)
        reply_string(rep, "iss", c->iss);
    reply_int(rep, "exp", c->exp);
    reply_int(rep, "iat", c->iat);
}

int check_verified(struct reply *rep, int rc, const struct jwt_claims *c)
{
    if (c->jti[0] != '\0')
        reply_log(rep, "jti", c->jti);
    if (c->has_sub)
        reply_log(rep, "sub", c->sub);
    if (rc < 0) {
        metrics_check(rc);
        reply_token_failure(rep, rc, c);
    }
    return rc;
}
