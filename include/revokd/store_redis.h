/* store_redis.h - the store kept in Redis: a plain server, or the primary
 * that a majority of Sentinels name (store.h for the interface). */
#ifndef REVOKD_STORE_REDIS_H
#define REVOKD_STORE_REDIS_H

#include <stddef.h>

#include "revokd/store.h"

struct store_redis_opts {
    const char *url;        /* redis://... or unix://... */
    const char *sentinels;  /* "host:port,..." or NULL/"" for a plain Redis */
    const char *master;     /* name the Sentinels monitor */
    const char *prefix;     /* key namespace */
    int timeout_ms;         /* connect and command timeout */
    int min_replicas;       /* WAIT for this many after every write */
    int replication_timeout_ms;
    int role_check_ms;      /* Sentinel mode: re-confirm ROLE this often */
};

/* Parses the options and prepares the store; no connection is made yet.
 * Returns NULL with one line naming the bad setting in err. */
struct store *store_redis_new(const struct store_redis_opts *opts, char *err, size_t errlen);

#endif
