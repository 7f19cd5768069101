/* route_health.c - /healthz (the process serves) and /readyz (it can do its
 * job: a writable Redis primary answers). Load balancers drain on /readyz. */
#include <stdatomic.h>

#include "revokd/reply.h"

void route_healthz(struct request *req, struct reply *rep)
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

void route_readyz(struct request *req, struct reply *rep)
{
    struct store_status st;

    if (atomic_load(&req->app->shutting_down)) {
        not_ready(rep, "shutting_down", "the node is shutting down");
        return;
    }
    if (store_probe(req->app->store, &st) < 0) {
        not_ready(rep, "store_unavailable", store_errstr(req->app->store));
        reply_log(rep, "store_error", store_errstr(req->app->store));
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "status", "ready");
    cJSON *store = cJSON_AddObjectToObject(body, "store");
    cJSON_AddStringToObject(store, "role", st.role);
    cJSON_AddStringToObject(store, "address", st.address);
    cJSON_AddBoolToObject(store, "accepts_revocations", st.accepts_revocations);
    reply_json(rep, 200, body);
}
