/* route_admin.c - the admin API: revoke a jti without the token, revoke
 * every token of a subject ("log out from all devices"), and reload the
 * files. Each needs an admin key; with none configured they refuse every
 * call. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "revokd/auth_limit.h"
#include "revokd/event_stream.h"
#include "revokd/keyring.h"
#include "revokd/loop.h"
#include "revokd/metrics.h"
#include "revokd/revoke.h"
#include "revokd/routes.h"

int route_admin_throttled(struct request *req, struct reply *rep)
{
    char wait[24];
    int seconds = auth_limit_check(req->app->auth_limit, (const struct sockaddr *)&req->peer, loop_now_ms());

    if (seconds == 0)
        return 0;
    metrics_limit(METRICS_LIMIT_AUTH_FAILURES);
    reply_error(rep, 429, "too_many_requests",
                "too many failed authentications from this address; retry after Retry-After seconds");
    snprintf(wait, sizeof(wait), "%d", seconds);
    reply_header(rep, "Retry-After", wait);
    return -1;
}

void route_admin_failed(struct request *req, struct reply *rep)
{
    auth_limit_failed(req->app->auth_limit, (const struct sockaddr *)&req->peer, loop_now_ms());
    reply_log(rep, "auth", "failed");
}

/* Returns 0 when the caller holds an admin key, else replies and returns -1. */
static int authorize(struct request *req, struct reply *rep)
{
    const char *key;
    size_t len;

    if (route_admin_throttled(req, rep) < 0)
        return -1;
    char name[ADMIN_NAME_MAX + 1];
    bool bearer = request_bearer(req, &key, &len) == 0;
    enum keyring_admin a = keyring_admin_check(req->app->keys, bearer ? key : "", bearer ? len : 0, name);

    if (a == KEYRING_ADMIN_NONE) {
        reply_error(rep, 403, "admin_disabled", "no admin keys are configured (REVOKD_ADMIN_KEYS_FILE)");
        return -1;
    }
    if (a != KEYRING_ADMIN_OK) {
        route_admin_failed(req, rep);
        reply_error(rep, 401, "unauthorized", "a valid admin key is required (Authorization: Bearer)");
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Bearer realm=\"revokd-admin\"");
        return -1;
    }
    req->admin = true;
    reply_log(rep, "admin_key", name); /* who did it: the key's name, never the key */
    snprintf(req->by, sizeof(req->by), "admin:%s", name);
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
    int64_t leeway, max_lifetime;
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
    keyring_limits(req->app->keys, iss, &leeway, &max_lifetime);
    if (exp > (double)(req->now + max_lifetime + leeway)) {
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
    return revoke_all(req, rep, iss, req->param, reason);
}

/* On a pool thread: reading files and keys must not stall the worker's
 * other requests. The reply is made here, while the request waits and
 * nothing else touches it. */
static void reload_run(struct work *w)
{
    struct request *req = (struct request *)((char *)w - offsetof(struct request, verify.work));
    char err[8192];

    if (keyring_reload(req->app->keys, err, sizeof(err)) < 0) {
        reply_error(&req->reply, 500, "reload_failed", err);
        return;
    }
    /* A feed key may be gone: the streams reconnect, and show their keys. */
    event_stream_end_all(req->app->events, EVENT_STREAM_END_reloaded);
    reply_begin(&req->reply, 200);
    reply_bool(&req->reply, "reloaded", true);
}

static enum request_step reloaded(struct request *req, struct reply *rep)
{
    (void)req;
    (void)rep;
    return REQUEST_DONE;
}

enum request_step route_admin_reload(struct request *req, struct reply *rep)
{
    if (authorize(req, rep) < 0 || request_body(req, rep, true) < 0)
        return REQUEST_DONE;
    req->verify.work.run = reload_run;
    return request_wait_work(req, &req->verify.work, reloaded);
}
