/* store_redis.h - the store kept in Redis: a plain server, or the primary
 * that a majority of Sentinels name (store.h for the interface). */
#ifndef REVOKD_STORE_REDIS_H
#define REVOKD_STORE_REDIS_H

#include <stddef.h>

#include "revokd/config.h"
#include "revokd/store.h"

struct store_redis_opts {
    const struct config_redis *redis;          /* the server, or the credentials and db
                                                  when Sentinels find the server */
    const struct config_endpoints *sentinels;  /* none for a plain Redis */
    const char *master;     /* name the Sentinels monitor */
    const char *source;     /* local address to connect from; NULL: any */
    const char *prefix;     /* key namespace */
    int timeout_ms;         /* connect and command timeout */
    int max_pending;        /* commands a worker's link may have waiting; a call beyond fails
                               -STORE_EOVERLOADED (the readiness probe excepted) */
    int min_replicas;       /* WAIT for this many after every write */
    int replication_timeout_ms;
    int role_check_ms;      /* Sentinel mode: re-confirm ROLE this often */
};

/* Prepares the store from settings config.c checked; no connection is made
 * yet. NULL when out of memory (err says so). */
struct store *store_redis_new(const struct store_redis_opts *opts, char *err, size_t errlen);

#endif
