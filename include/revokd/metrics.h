/* metrics.h - what revokd counts, for GET /metrics (Prometheus text format).
 *
 * Every update is on the request path, so each thread writes its own shard
 * (no lock, no shared cache line) and a scrape sums the shards. Updates from
 * threads that have not touched metrics before register a shard once. */
#ifndef REVOKD_METRICS_H
#define REVOKD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "revokd/jwt.h"

struct keyring;
struct store_edge_stats;
struct event_stream_stats;

/* Sets up the route labels: nroutes routes, label(i) "GET /v1/check" style
 * (called at every scrape, so its strings must live as long as the process).
 * Call once before any thread updates a metric. */
void metrics_init(size_t nroutes, const char *(*label)(size_t i));

/* One finished HTTP request. route is the index in the route table, or -1
 * when no route matched (404, 405, or refused before routing). A status
 * outside the set metrics.c counts one by one is counted as "other". */
void metrics_request(int route, int status, double seconds);

/* One decision of /v1/check (token or lookup): 0 for active, -JWT_* for a
 * refused token, -METRICS_CHECK_UNKNOWN when the store could not answer
 * (check.h's CHECK_ESTORE). The sign is not looked at; any other value is
 * dropped. */
#define METRICS_CHECK_UNKNOWN (JWT_REASON_COUNT + 1)
void metrics_check(int result);

enum metrics_revocation { METRICS_REVOKE_TOKEN, METRICS_REVOKE_SUBJECT };

/* One revocation stored (not refused, not failed). admin: by an admin key,
 * else by the token's holder. */
void metrics_revocation(enum metrics_revocation kind, bool admin);

/* One Redis command answered after seconds, or (ok false, seconds
 * ignored) one that failed: no connection, a timeout, a lost connection or
 * an error reply. */
void metrics_redis(double seconds, bool ok);

/* One look into the verified-token cache. */
void metrics_cache(bool hit);

/* A limit that refused a connection or a request, or cut one short. */
enum metrics_limit {
    METRICS_LIMIT_CONNECTIONS,  /* REVOKD_MAX_CONNECTIONS: refused at accept */
    METRICS_LIMIT_PER_ADDRESS,  /* REVOKD_MAX_CONNECTIONS_PER_ADDRESS: refused at accept */
    METRICS_LIMIT_REQUEST_TIME, /* REVOKD_REQUEST_TIMEOUT: closed mid-request */
    METRICS_LIMIT_AUTH_FAILURES, /* REVOKD_AUTH_FAILURES_*: answered 429 */
    METRICS_LIMIT_STORE_PENDING, /* REVOKD_STORE_MAX_PENDING: answered 503 overloaded */
    METRICS_NLIMITS
};
void metrics_limit(enum metrics_limit limit);

/* Values read at scrape time. */
struct metrics_gauges {
    unsigned connections;   /* open HTTP connections */
    size_t cache_entries;   /* verified tokens cached */
    size_t cache_capacity;
    bool store_up;          /* the store answered its last command */
    bool store_data_lost;   /* the last probe found the store's data lost */
    struct keyring *keys;   /* each issuer's keys; NULL: not shown */
    const struct store_edge_stats *edge; /* an edge's feed and copy (store_edge.h); NULL: not an edge */
    const struct event_stream_stats *feed; /* the event streams (event_stream.h); NULL: none (an edge) */
};

/* One reload of the files, done or refused. */
void metrics_reload(bool ok);

/* The whole exposition, malloc'd and NUL-terminated (the caller frees), or
 * NULL when out of memory. */
char *metrics_render(const struct metrics_gauges *g);

#endif
