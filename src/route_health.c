/* route_health.c - /healthz (the process serves) and /readyz (it can do its
 * job: a writable Redis primary answers). Load balancers drain on /readyz. */
#include <stdatomic.h>

#include "revokd/reply.h"

void route_health_live(struct request *req, struct reply *rep)
{
    (void)req;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "status", "ok");
    reply_json(rep, 200, body);
}

static void not_ready(struct reply *rep, const char *code, const char *why)
{
    reply_error(rep, 503, code, why);
    cJSON_AddStringToObject(rep->body, "status", "not_ready");
}

static void probed(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct store_status *st = &res->status;
    (void)req;

    if (res->rc < 0) {
        /* Data lost: checks go on from what Redis holds now, but this node
         * can no longer vouch that a revoked token stays revoked. */
        not_ready(rep, res->rc == -STORE_EDATALOST ? "store_data_lost" : "store_unavailable", res->error);
        reply_log(rep, "store_error", res->error);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "status", "ready");
    cJSON *store = cJSON_AddObjectToObject(body, "store");
    cJSON_AddStringToObject(store, "role", st->role);
    cJSON_AddStringToObject(store, "address", st->address);
    cJSON_AddBoolToObject(store, "accepts_revocations", st->accepts_revocations);
    reply_json(rep, 200, body);
}

void route_health_ready(struct request *req, struct reply *rep)
{
    if (atomic_load(&req->app->shutting_down)) {
        not_ready(rep, "shutting_down", "the node is shutting down");
        return;
    }
    req->then = probed;
    store_probe(req->store, request_store_done, req);
}
