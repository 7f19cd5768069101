/* store_edge.h - the store of an edge node (REVOKD_MODE=edge): every
 * revocation in force, held in memory (store_set.h), filled by replaying
 * the central service's revocation feed and kept current by following it
 * (edge_feed.h). Nothing connects to Redis.
 *
 * A check (IS_REVOKED) is answered from memory in the next round of the
 * caller's loop, as the interface promises, and only while the edge can
 * vouch for what it holds: it fails -STORE_ESTALE until the feed has been
 * replayed, once central has not been heard from (an answered poll, events
 * or none) for max_staleness_ms, while a revocation central acknowledged
 * through this edge has not been read back, and while an event found no
 * room. Never "not revoked" from a view it cannot vouch for. PROBE says
 * the same, with how current the copy is (store_status's edge fields).
 *
 * Revocations are not stored here: FORWARD hands the request to central
 * and answers with central's answer, a success only once the feed has
 * brought the revocation back (edge_feed_forward()), so that the edge
 * enforces it from the moment it says so. REVOKE_JTI and REVOKE_ALL fail
 * -STORE_EUNAVAILABLE. */
#ifndef REVOKD_STORE_EDGE_H
#define REVOKD_STORE_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/edge_feed.h"
#include "revokd/store.h"

struct store_edge_opts {
    const char *feed_url;     /* central's .../v1/events */
    const char *admin_url;    /* central's admin listener, for /v1/admin/...; "" or NULL: feed_url's address */
    const char *feed_key;     /* its credential (copied, wiped when freed) */
    const char *ca_file;      /* "" or NULL: the system's CA certificates */
    const char *user_agent;
    int64_t poll_wait_s;      /* how long the feed's stream may be silent before it is taken for dead */
    int64_t timeout_ms;       /* connect; a poll's answer beyond its wait; a forwarded call */
    int64_t max_staleness_ms; /* silence from central after which checks fail */
    size_t max_revocations;   /* held at most; beyond, the edge fails closed */
    int max_pending;          /* forwarded calls each worker may have open; beyond: -STORE_EOVERLOADED */
    /* The issuer's leeway and longest token lifetime (keyring_limits()),
     * from the feed's thread: how long to keep a record. */
    void (*limits)(void *arg, const char *iss, int64_t *leeway, int64_t *max_lifetime);
    void *limits_arg;
};

/* Prepares the store; store_start() starts following the feed. NULL when
 * out of memory (err says so). */
struct store *store_edge_new(const struct store_edge_opts *opts, char *err, size_t errlen);

/* What /metrics shows of an edge store. */
struct store_edge_stats {
    bool replayed, stale, behind, full;
    int64_t lag_ms;           /* since central was last heard from; since start when never */
    size_t jti, sub;          /* records held */
    size_t bytes;             /* memory they take */
    struct edge_feed_stats feed;
};
void store_edge_stats(struct store *s, struct store_edge_stats *out);

/* The feed's key, rotated (SIGHUP): the feed's next requests carry it (edge_feed_set_key). Returns
 * 0, or -1 when out of memory or not started (the key in force stays). */
int store_edge_set_key(struct store *s, const char *key);

/* The feed's callbacks (edge_feed_opts's apply and progress), public so
 * that a test can fill an edge store with events of its own making
 * without a central service: it then neither calls store_start(), nor may
 * it forward. */
int store_edge_apply(struct store *s, const struct edge_feed_event *e);
void store_edge_progress(struct store *s, const struct edge_feed_progress *p);

#endif
