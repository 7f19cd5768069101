/* store_redis_internal.h - what store_redis.c (settings, the primary, the
 * Sentinel watcher, the data-loss marker) shares with store_redis_conn.c (a
 * worker's connections). Private to the Redis store. */
#ifndef REVOKD_STORE_REDIS_INTERNAL_H
#define REVOKD_STORE_REDIS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/read.h>

#include "revokd/config.h"
#include "revokd/store.h"

struct store_redis {
    struct store base; /* first: the interface's handle */
    char *prefix;
    int timeout_ms, max_pending, min_replicas, replication_timeout_ms, role_check_ms;

    /* Where Redis is: a fixed endpoint or socket, or found via Sentinel.
     * The settings' own, which outlive the store. */
    const struct config_redis *redis;
    const struct config_endpoints *sentinels;
    const char *master;
    const char *source; /* local address to connect from, or NULL */

    /* Sentinel mode: the current primary, and a generation bumped whenever it
     * changes or is found wrong, so every worker drops its connections. */
    pthread_mutex_t lock;
    struct config_endpoint primary;
    bool primary_known;
    atomic_uint generation;
    /* When a majority of Sentinels (or a +switch-master notice) last named
     * the primary, in monotonic ms. Past the confirmation window the store
     * fails closed: a node cut off from the Sentinels may be talking to a
     * primary that has been replaced on the other side of a partition. */
    _Atomic int64_t confirmed_ms;

    atomic_bool up; /* the last answer any worker waited for came */
    pthread_t watcher;
    bool watcher_started;
    atomic_bool stopping;

    /* The data-loss marker (store.h, STORE_PROBE): the id this node writes
     * when it finds none before it has adopted one, and the one it adopted
     * (under lock). Once adopted, a probe only reads the marker: writing it
     * again after a loss would hide the loss. */
    char candidate[33];
    char epoch[33];
    atomic_bool adopted, data_lost;
};

static inline bool store_redis_sentinel_mode(const struct store_redis *s)
{
    return s->sentinels->n > 0;
}

/* Sentinel mode: copies the confirmed primary into *ep and its generation
 * into *gen. Returns false when no primary is confirmed now. */
bool store_redis_primary(struct store_redis *s, struct config_endpoint *ep, unsigned *gen);

/* True while the Sentinels' word on the primary is recent enough. */
bool store_redis_confirmed(struct store_redis *s);

/* Forgets the primary (it was found not to be one) unless it already
 * changed since seen_generation, so the next connection asks again. */
void store_redis_primary_forget(struct store_redis *s, unsigned seen_generation);

/* The marker a probe found (NULL: there was none, and the probe wrote the
 * candidate): adopts it when this node has none yet, and returns whether
 * the data this node knew is still there. */
bool store_redis_epoch_holds(struct store_redis *s, const char *found);

/* Makes a context's reader refuse an array of more than
 * STORE_REDIS_MAX_ELEMENTS elements before allocating for it (hiredis 0.14
 * allocates a pointer per announced element, so "*767225700" alone would
 * cost 6 GB): the connection fails instead, as on any reply that cannot be
 * read. revokd's largest reply is far smaller. */
#define STORE_REDIS_MAX_ELEMENTS 4096
void store_redis_bound_reader(redisReader *reader);

/* store_redis_conn.c: a worker's connection, and its calls. */
struct store_conn *store_redis_conn_new(struct store *s, struct loop *loop);
void store_redis_conn_free(struct store_conn *c);
void store_redis_conn_call(struct store_conn *c, const struct store_call *call, store_done done, void *arg);

#endif
