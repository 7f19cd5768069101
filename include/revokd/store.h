/* store.h - where revocations are kept: an interface, a table of operations
 * on an opaque store.
 *
 * Two implementations: Redis (store_redis.h), alone or behind Sentinels,
 * and an in-memory double for the handlers' unit tests (store_memory.h).
 * Each worker thread reaches the store through a connection of its own,
 * driven by the worker's loop. Every call is answered exactly once, through
 * its done callback on the worker's thread, and never inside the call that
 * made it: a failure found at once is delivered on the loop's next round.
 * Every call fails closed: when the store's answer is not known, the caller
 * gets an error, never "not revoked". */
#ifndef REVOKD_STORE_H
#define REVOKD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct store;
struct store_conn;

/* STORE_EOVERLOADED: the call was refused before anything was sent, the
 * worker's connection already having as many commands waiting for replies
 * as it may (REVOKD_STORE_MAX_PENDING). */
/* STORE_ESTALE: an edge's copy of the central service's revocations is not
 * one it can vouch for (store_edge.h): the feed not replayed yet, central
 * not heard from within REVOKD_EDGE_MAX_STALENESS_MS, a revocation central
 * acknowledged through this edge not read back yet, or no room for more. */
enum {
    STORE_EUNAVAILABLE = 1,
    STORE_ENOTREPLICATED = 2,
    STORE_EDATALOST = 3,
    STORE_EOVERLOADED = 4,
    STORE_ESTALE = 5,
};

enum store_op {
    /* Is the token revoked? Yes when its jti is, or when sub (may be NULL)
     * was revoked-all at or after iat. */
    STORE_IS_REVOKED,
    /* Records jti as revoked until expires_at (unix seconds), with reason
     * (may be NULL) as the record's value. A record already there is
     * extended, never shortened: one that lasts as long or longer stays as
     * it is (its reason too). */
    STORE_REVOKE_JTI,
    /* Moves sub's revoke-all cutoff forward to cutoff (never back) and
     * keeps the record ttl seconds; the result's cutoff is the one in force
     * afterwards. */
    STORE_REVOKE_ALL,
    /* Readiness: the store answers, is a primary, and accepts a write; the
     * result's status is filled as far as known either way. A primary that
     * refuses the write only for want of replicas counts as ready with
     * accepts_revocations false: every node shares that primary, so
     * draining this one would take checks down on all of them while
     * helping none; revokes answer 503 not_replicated meanwhile.
     *
     * The probe also watches for the store losing its data (FLUSHALL, a
     * restart without persistence, a replica resynchronised from an empty
     * primary), which would silently bring back every revoked token: a
     * marker record holds a random id, written by whichever node probes
     * first and adopted by every node that finds it; once a node has
     * adopted one, its probes only read it. A marker that is then gone or
     * different means the data it stood for is gone: the probe fails with
     * -STORE_EDATALOST and status.data_lost, until the adopted marker is
     * back (the data restored) or the node restarts, which adopts the
     * marker as it finds it. */
    STORE_PROBE,
    /* The revocation log: up to limit entries after the entry after (a
     * canonical id, "<ms>-<seq>"; "0-0" reads from the start), oldest
     * first. With none there yet, waits up to wait_ms for the first, reading
     * again every STORE_LOG_POLL_MS, and then answers with what it found,
     * nothing included. */
    STORE_READ_LOG,
    /* An edge's one write (store_edge.h): the revocation request forward,
     * sent as it came to the central service, whose answer the result's
     * forwarded holds; a 2xx answer comes once the edge has read the
     * revocation back from central's log, so a check that follows sees it.
     * Any other store answers -STORE_EUNAVAILABLE. An edge keeps no log of
     * its own: READ_LOG, REVOKE_JTI and REVOKE_ALL fail there. */
    STORE_FORWARD,
};

/* A request for the central service (FORWARD), as received: path and query
 * still percent-encoded. */
struct store_forward {
    const char *method, *path;
    const char *query;         /* NULL: none */
    const char *content_type;  /* NULL: none */
    const char *authorization; /* NULL: none */
    const char *request_id;
    const char *body;
    size_t body_len;
};

/* Central's answer to a FORWARD, to relay. */
struct store_forwarded {
    int status;
    const char *body;             /* JSON, or "" for none */
    size_t len;
    const char *retry_after;      /* NULL: none */
    const char *www_authenticate; /* NULL: none */
    const char *error_code;       /* the body's "error"; NULL: none */
};

/* The revocation log. Every revocation that changes a record (a new jti
 * record, a later expiry, a cutoff moved forward) appends one entry to it
 * in the same atomic step that stores the record, so the record and the log
 * never disagree, and a retried revocation that changes nothing logs
 * nothing. Entries are dropped once older than the retention the writes
 * pass (the longest any record lives), so replaying the log from the start
 * and keeping the entries whose exp has not passed (the latest per jti or
 * subject) gives exactly the revocations in force. */
enum store_event_kind { STORE_EVENT_JTI, STORE_EVENT_SUBJECT };

/* Longest entry id, "<ms>-<seq>", each part up to 20 digits, and its NUL. */
#define STORE_EVENT_ID_MAX 42
/* Longest "by": "client:" and a client id of up to 256 bytes, and its NUL. */
#define STORE_BY_MAX 264
/* How often a STORE_READ_LOG that waits reads again. */
#define STORE_LOG_POLL_MS 100

/* One entry of the log, as read back. */
struct store_event {
    char id[STORE_EVENT_ID_MAX]; /* its place in the log: what to read after next */
    enum store_event_kind kind;
    const char *iss;    /* the namespace; "" for the tokens without iss */
    const char *jti;    /* JTI; else NULL */
    const char *sub;    /* SUBJECT; else NULL */
    int64_t exp;        /* unix seconds: when the record ends, and the entry stops mattering */
    int64_t cutoff;     /* SUBJECT: tokens issued at or before it are revoked */
    const char *reason; /* NULL when none was given */
    const char *by;     /* "holder", "admin:<key name>" or "client:<client id>" */
    int64_t at;         /* unix milliseconds, the store's clock, when it was written */
};

/* One call. iss is the namespace: the token's iss, or "" for none. The
 * strings are the caller's and need only last for the call itself. */
struct store_call {
    enum store_op op;
    const char *iss, *jti, *sub;
    int64_t iat;          /* IS_REVOKED */
    int64_t expires_at;   /* REVOKE_JTI */
    const char *reason;   /* REVOKE_JTI: the record's value; REVOKE_*: logged (NULL: none) */
    int64_t cutoff;       /* REVOKE_ALL */
    int64_t ttl;          /* REVOKE_ALL */
    const char *by;       /* REVOKE_*: who, for the log (store_event's by) */
    int64_t retention_ms; /* REVOKE_*: how long the log keeps entries; 0: it is not trimmed */
    const char *after;    /* READ_LOG: the id to read after */
    int limit;            /* READ_LOG: 1.. entries at most */
    int64_t wait_ms;      /* READ_LOG: how long to wait for a first entry */
    bool block;           /* READ_LOG: the connection is this caller's alone, so the wait may
                             hold it (Redis: XREAD BLOCK), and an entry is seen at once */
    const struct store_forward *forward; /* FORWARD */
};

struct store_status {
    char role[16];     /* "master", "replica", "unknown" */
    char address[300]; /* host:port or the socket path */
    bool accepts_revocations;
    bool data_lost;
    /* An edge's (store_edge.h): how current its copy of central's
     * revocations is. */
    bool edge;
    bool replayed;       /* the feed was read to its end once */
    bool stale;          /* not one it can vouch for (STORE_ESTALE) */
    int64_t lag_ms;      /* since central was last heard from (or, never heard, since start) */
    char last_id[48];    /* the last event applied; "0" before any */
    size_t revocations;  /* held */
    size_t bytes;        /* the memory they take */
};

struct store_result {
    int rc;             /* 0, or -STORE_E*: UNAVAILABLE; NOTREPLICATED (writes, applied
                           on the primary but not confirmed by enough replicas, or
                           refused for want of them); DATALOST (PROBE); OVERLOADED */
    const char *error;  /* why, for logs, when rc < 0 */
    bool revoked;       /* IS_REVOKED */
    int64_t cutoff;     /* REVOKE_ALL */
    struct store_status status; /* PROBE */
    const struct store_event *events; /* READ_LOG: n_events entries, oldest first */
    size_t n_events;
    struct store_forwarded forwarded; /* FORWARD, when rc is 0 */
};

/* The result is only valid during the call. */
typedef void (*store_done)(void *arg, const struct store_result *res);

/* What an implementation provides; its store and connection structs begin
 * with struct store and struct store_conn. */
struct store_ops {
    int (*start)(struct store *s);
    void (*free)(struct store *s);
    struct store_conn *(*conn_new)(struct store *s, struct loop *loop);
    void (*conn_free)(struct store_conn *c);
    void (*call)(struct store_conn *c, const struct store_call *call, store_done done, void *arg);
    bool (*up)(struct store *s);
    bool (*data_lost)(struct store *s);
};

struct store {
    const struct store_ops *ops;
};

struct store_conn {
    struct store *store;
};

/* Starts what the store runs beside the workers (Redis: the Sentinel
 * watcher). Returns 0 or -1. */
int store_start(struct store *s);
/* Frees the store; its connections must be freed first. NULL is a no-op. */
void store_free(struct store *s);

/* A worker's connection, driven by loop; it connects on first use. NULL
 * when out of memory. */
struct store_conn *store_conn_new(struct store *s, struct loop *loop);
/* Answers every call still waiting as unavailable, then frees c. */
void store_conn_free(struct store_conn *c);

/* Makes call; done(arg, result) answers it later, on this thread. */
void store_call(struct store_conn *c, const struct store_call *call, store_done done, void *arg);

/* True when the store's last call was answered (for metrics). */
bool store_up(struct store *s);
/* True when the last probe found the store's data lost (for metrics). */
bool store_data_lost(struct store *s);

#endif
