/* route_health.c - /healthz (the process serves) and /readyz (it can do its
 * job: a writable Redis primary answers, or on an edge, its copy of central's
 * revocations is current; and every issuer has keys). Load balancers drain
 * on /readyz. */
#include <stdatomic.h>
#include <time.h>

#include "revokd/keyring.h"
#include "revokd/routes.h"

enum request_step route_health_live(struct request *req, struct reply *rep)
{
    (void)req;
    reply_begin(rep, 200);
    reply_string(rep, "status", "ok");
    return REQUEST_DONE;
}

static enum request_step not_ready(struct reply *rep, const char *code, const char *why)
{
    reply_error(rep, 503, code, why);
    reply_string(rep, "status", "not_ready");
    return REQUEST_DONE;
}

static void put_issuer(void *arg, const struct keyring_status *s)
{
    struct reply *rep = arg;

    reply_array_object(rep, "issuers");
    reply_string(rep, "iss", s->iss);
    reply_string(rep, "source", s->source);
    reply_int(rep, "keys", (int64_t)s->keys);
    if (s->loaded_at != 0)
        reply_int(rep, "age_seconds", (int64_t)time(NULL) - s->loaded_at);
    else
        reply_null(rep, "age_seconds");
    reply_string(rep, "last_fetch", s->last);
    reply_bool(rep, "stale", s->stale);
    reply_object_end(rep);
}

static enum request_step probed(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct store_status *st = &res->status;
    char why[320];

    if (res->rc < 0) {
        reply_log(rep, "store_error", res->error);
        /* Data lost: checks go on from what Redis holds now, but this node
         * can no longer vouch that a revoked token stays revoked. */
        not_ready(rep,
                  res->rc == -STORE_EDATALOST ? "store_data_lost"
                  : res->rc == -STORE_ESTALE  ? "feed_stale"
                                              : "store_unavailable",
                  res->error);
    } else if (!keyring_ready(req->app->keys, why, sizeof(why))) {
        not_ready(rep, "keys_unavailable", why);
    } else {
        reply_begin(rep, 200);
        reply_string(rep, "status", "ready");
    }
    reply_string(rep, "mode", st->edge ? "edge" : "central");
    if (st->edge) {
        /* How current the copy is, ready or not. */
        reply_object(rep, "edge");
        reply_string(rep, "central", st->address);
        reply_bool(rep, "replayed", st->replayed);
        reply_bool(rep, "stale", st->stale);
        reply_int(rep, "lag_ms", st->lag_ms);
        reply_string(rep, "last_id", st->last_id);
        reply_int(rep, "revocations", (int64_t)st->revocations);
        reply_int(rep, "bytes", (int64_t)st->bytes);
        reply_object_end(rep);
    } else if (res->rc == 0) {
        reply_object(rep, "store");
        reply_string(rep, "role", st->role);
        reply_string(rep, "address", st->address);
        reply_bool(rep, "accepts_revocations", st->accepts_revocations);
        reply_object_end(rep);
    }
    keyring_each(req->app->keys, put_issuer, rep);
    return REQUEST_DONE;
}

enum request_step route_health_ready(struct request *req, struct reply *rep)
{
    if (atomic_load(&req->app->shutting_down))
        return not_ready(rep, "shutting_down", "the node is shutting down");
    return request_wait_store(req, &(struct store_call){.op = STORE_PROBE}, probed);
}
