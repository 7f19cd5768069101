/* app.h - what every request handler may use, built once by main(). */
#ifndef REVOKD_APP_H
#define REVOKD_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "revokd/config.h"
#include "revokd/keyring.h"
#include "revokd/store.h"
#include "revokd/token_cache.h"

struct auth_limit;
struct event_stream;
struct http_server;
struct work_pool;

struct app {
    const struct config *cfg;
    struct keyring *keys;      /* issuers' keys and admin keys */
    struct store *store;
    struct event_stream *events; /* the log's SSE consumers (event_stream.h); NULL on an edge */
    bool edge;                 /* REVOKD_MODE=edge: store_edge.h, revocations forwarded to central */
    struct token_cache *cache; /* verified tokens; never NULL (may be disabled) */
    struct auth_limit *auth_limit; /* failed authentication per address; NULL: none */
    struct work_pool *pool;    /* signature checks off the event loops */
    struct http_server *http;  /* set once it listens, for /metrics */
    atomic_bool shutting_down; /* set on SIGTERM: /readyz turns 503 */
};

#endif
