/* store.h - the revocation records, kept in Redis.
 *
 * One struct store is shared by all threads; each thread transparently gets
 * its own connection (hiredis contexts are not thread-safe), re-established
 * after errors. In Sentinel mode the primary is found through the Sentinels
 * and confirmed with ROLE. Every call fails closed: when Redis's answer is
 * not known, the caller gets an error, never "not revoked". */
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

enum { STORE_EUNAVAILABLE = 1, STORE_ENOTREPLICATED = 2 };

/* Parses the options and prepares the store; no connection is made yet.
 * Returns NULL with one line naming the bad setting in err. */
struct store *store_new(const struct store_opts *opts, char *err, size_t errlen);
void store_free(struct store *s);

/* Starts following Sentinel's +switch-master notices in a thread of the
 * store's own (a no-op for a plain Redis). Returns 0 or -1. */
int store_start(struct store *s);

/* Sets *revoked when the token's jti is revoked, or when sub (may be NULL)
 * was revoked-all at or after iat. One round trip. Returns 0 or
 * -STORE_EUNAVAILABLE. */
int store_is_revoked(struct store *s, const char *iss, const char *jti, const char *sub,
                     int64_t iat, bool *revoked);

/* Records jti as revoked until expires_at (unix seconds). reason may be NULL.
 * Returns 0, -STORE_EUNAVAILABLE, or -STORE_ENOTREPLICATED when fewer than
 * min_replicas confirmed it (it may still be applied on the primary). */
int store_revoke_jti(struct store *s, const char *iss, const char *jti, int64_t expires_at,
                     const char *reason);

/* Moves sub's revoke-all cutoff forward to cutoff (never back) and keeps the
 * record ttl seconds. *effective receives the cutoff in force afterwards.
 * Returns like store_revoke_jti(). */
int store_revoke_all(struct store *s, const char *iss, const char *sub, int64_t cutoff,
                     int64_t ttl, int64_t *effective);

struct store_status {
    char role[16];     /* "master", "replica", "unknown" */
    char address[300]; /* host:port or the socket path */
    bool accepts_revocations;
};

/* Readiness: Redis answers, is a primary, and accepts a write. Returns 0 or
 * -STORE_EUNAVAILABLE; st is filled as far as known either way.
 * One exception: a primary that refuses the write only for want of replicas
 * (NOREPLICAS) counts as ready with accepts_revocations false. Every node
 * shares that primary, so draining this one would take checks down on all
 * of them while helping none; revokes answer 503 not_replicated meanwhile. */
int store_probe(struct store *s, struct store_status *st);

/* The calling thread's last error, for logs. */
const char *store_errstr(struct store *s);

#endif
