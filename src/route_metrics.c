/* route_metrics.c - GET /metrics: the Prometheus text exposition of what
 * metrics.c counted, plus the gauges read now from the server, the cache and
 * the store. */
#include "revokd/event_stream.h"
#include "revokd/http_server.h"
#include "revokd/metrics.h"
#include "revokd/routes.h"
#include "revokd/store_edge.h"

enum request_step route_metrics(struct request *req, struct reply *rep)
{
    const struct app *app = req->app;
    struct metrics_gauges g = {0};

    /* app->http is set only once the server listens, and a test may run
     * without a cache or a store. */
    if (app->http != NULL)
        g.connections = http_server_connections(app->http);
    if (app->cache != NULL) {
        g.cache_entries = token_cache_size(app->cache);
        g.cache_capacity = token_cache_capacity(app->cache);
    }
    g.store_up = app->store != NULL && store_up(app->store);
    g.store_data_lost = app->store != NULL && store_data_lost(app->store);
    g.keys = app->keys;
    struct store_edge_stats edge;
    if (app->edge && app->store != NULL) {
        store_edge_stats(app->store, &edge);
        g.edge = &edge;
    }
    struct event_stream_stats feed;
    if (app->events != NULL) {
        event_stream_stats(app->events, &feed);
        g.feed = &feed;
    }

    char *text = metrics_render(&g);
    if (text == NULL) {
        /* No body: the transport answers its out-of-memory error. */
        rep->status = 500;
        return REQUEST_DONE;
    }
    reply_text(rep, 200, text, "text/plain; version=0.0.4; charset=utf-8");
    return REQUEST_DONE;
}
