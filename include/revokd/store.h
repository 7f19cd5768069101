/* store.h - the revocation records, kept in Redis.
 *
 * One struct store (store_redis.c) holds the settings and, in Sentinel mode,
 * where the primary is. Each worker thread has a struct store_conn
 * (store_conn.c): its own pipelined connections, driven by the worker's
 * event loop and re-established after errors. Every call fails closed: when
 * Redis's answer is not known, the caller gets an error, never "not
 * revoked". */
#ifndef REVOKD_STORE_H
#define REVOKD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_opts {
    const char *url;        /* redis://... or unix://... */
    const char *sentinels;  /* "host:port,..." or NULL/"" for a plain Redis */
    const char *master;     /* name the Sentinels monitor */
    const char *prefix;     /* key namespace */
    int timeout_ms;         /* connect and command timeout */
    int min_replicas;       /* WAIT for this many after every write */
    int replication_timeout_ms;
    int role_check_ms;      /* Sentinel mode: re-confirm ROLE this often */
};

enum { STORE_EUNAVAILABLE = 1, STORE_ENOTREPLICATED = 2, STORE_EDATALOST = 3 };

/* Parses the options and prepares the store; no connection is made yet.
 * Returns NULL with one line naming the bad setting in err. */
struct store *store_new(const struct store_opts *opts, char *err, size_t errlen);
void store_free(struct store *s);

/* Starts following Sentinel's +switch-master notices in a thread of the
 * store's own (a no-op for a plain Redis). Returns 0 or -1. */
int store_start(struct store *s);

/* ---- Calls, made on a worker thread through its own connection ----
 *
 * Each call is pipelined on the worker's connection and answered through
 * done(arg, result) on the same thread, exactly once: later, when Redis
 * replies or the call times out, or before the call returns when there is
 * no usable connection. The result is only valid during done. */

struct store_status {
    char role[16];     /* "master", "replica", "unknown" */
    char address[300]; /* host:port or the socket path */
    bool accepts_revocations;
    bool data_lost;    /* see store_probe() */
};

struct store_result {
    int rc;             /* 0, -STORE_EUNAVAILABLE, -STORE_ENOTREPLICATED or -STORE_EDATALOST */
    const char *error;  /* why, for logs, when rc < 0 */
    bool revoked;       /* store_is_revoked */
    int64_t cutoff;     /* store_revoke_all: the cutoff in force */
    struct store_status status; /* store_probe */
};

typedef void (*store_done)(void *arg, const struct store_result *res);

struct loop;
struct store_conn;

/* A worker's connection, driven by loop; it connects on first use. */
struct store_conn *store_conn_new(struct store *s, struct loop *loop);
/* Answers every call still waiting as unavailable, then frees c. */
void store_conn_free(struct store_conn *c);

/* Sends what was queued, enforces timeouts and re-checks the primary. The
 * worker calls it after each round of events; returns the ms until it wants
 * to be called again. */
int store_conn_tick(struct store_conn *c);

/* Is the token revoked? revoked is set when the jti is, or when sub (may be
 * NULL) was revoked-all at or after iat. Fails with -STORE_EUNAVAILABLE. */
void store_is_revoked(struct store_conn *c, const char *iss, const char *jti, const char *sub,
                      int64_t iat, store_done done, void *arg);

/* Records jti as revoked until expires_at (unix seconds); reason may be
 * NULL. Fails with -STORE_EUNAVAILABLE, or -STORE_ENOTREPLICATED when fewer
 * than min_replicas confirmed it (it may still be applied on the primary). */
void store_revoke_jti(struct store_conn *c, const char *iss, const char *jti, int64_t expires_at,
                      const char *reason, store_done done, void *arg);

/* Moves sub's revoke-all cutoff forward to cutoff (never back) and keeps the
 * record ttl seconds; result.cutoff is the cutoff in force afterwards. Fails
 * like store_revoke_jti(). */
void store_revoke_all(struct store_conn *c, const char *iss, const char *sub, int64_t cutoff,
                      int64_t ttl, store_done done, void *arg);

/* Readiness: Redis answers, is a primary, and accepts a write; result.status
 * is filled as far as known either way. One exception: a primary that
 * refuses the write only for want of replicas (NOREPLICAS) counts as ready
 * with accepts_revocations false. Every node shares that primary, so
 * draining this one would take checks down on all of them while helping
 * none; revokes answer 503 not_replicated meanwhile.
 *
 * The probe also watches for Redis losing its data (FLUSHALL, a restart
 * without persistence, a replica resynchronised from an empty primary),
 * which would silently bring back every revoked token: a marker key
 * (<prefix>epoch) holds a random id, written by whichever node probes first
 * and adopted by every node that finds it; once a node has adopted one, its
 * probes only read it. A marker that is then gone or different means the
 * data it stood for is gone: the probe fails with -STORE_EDATALOST and
 * status.data_lost, until the adopted marker is back (the data restored) or
 * the node restarts, which adopts the marker as it finds it (writing one
 * when there is none). */
void store_probe(struct store_conn *c, store_done done, void *arg);

/* True when the last command any worker sent got an answer (for metrics). */
bool store_up(struct store *s);

/* True when the last probe found the store's data lost (for metrics). */
bool store_data_lost(struct store *s);

#endif
