/* check.c - is this token active? Signature and claims first (no store
 * access for a forged token), then one lookup of both the jti record and the
 * subject's revoke-all cutoff. */
#include "revokd/check.h"

#include "revokd/metrics.h"

const char *check_namespace(const struct jwt_claims *c)
{
    return c->has_iss ? c->iss : "";
}

int check_verify(struct app *app, const char *token, size_t len, int64_t now, struct jwt_claims *c)
{
    unsigned char key[TOKEN_CACHE_KEY_SIZE];
    /* A token longer than the limit is refused by jwt_verify before any
     * work; it must not cost a hash here either. */
    bool cacheable = len <= app->policy.max_token_bytes;
    int rc;

    if (cacheable) {
        token_cache_key(token, len, key);
        bool hit = token_cache_get(app->cache, key, now, c);
        metrics_cache(hit);
        if (hit)
            return jwt_check_times(&app->policy, c, now);
    }
    if ((rc = jwt_verify(&app->policy, token, len, c)) < 0)
        return rc;
    /* Past exp + leeway the token cannot pass jwt_check_times again. */
    if (cacheable)
        token_cache_put(app->cache, key, c, c->exp + app->policy.leeway);
    return jwt_check_times(&app->policy, c, now);
}

void check_revoked(struct request *req,
                   void (*then)(struct request *req, struct reply *rep, const struct store_result *res))
{
    const struct jwt_claims *c = &req->claims;
    req->then = then;
    store_is_revoked(req->store, check_namespace(c), c->jti, c->has_sub ? c->sub : NULL, c->iat,
                     request_store_done, req);
}

int check_result(const struct store_result *res)
{
    /* Fail closed: an unknown state is never reported as active. */
    if (res->rc < 0)
        return -CHECK_ESTORE;
    return res->revoked ? -JWT_revoked : 0;
}
