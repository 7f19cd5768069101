/* edge_feed.h - an edge's link to the central service: one thread, one
 * libcurl multi handle, following central's revocation feed and carrying the
 * revocation calls the edge forwards.
 *
 * The feed is central's GET /v1/events. At start it is replayed from the
 * beginning (after=0) in pages of JSON (limit=N), until a page comes back
 * short; from then on the edge follows it as Server-Sent Events, after the
 * last event applied: each event as soon as central has written it, and a
 * heartbeat comment at least every second of quiet, so a quiet feed still
 * proves that the edge is current. Every event and heartbeat is a word from
 * central; a stream silent for wait_s is taken for dead. When central
 * accepts a revocation this node forwarded, the stream is dropped for one
 * page read at once, which holds that revocation, and opened again. A
 * failed page or stream is retried after 100 ms, 200 ms, ... up to 1 s,
 * from the last event applied: nothing is missed and nothing applied
 * twice.
 *
 * What the pages hold goes to the caller's apply(), one event at a time in
 * the feed's order, and how the feed stands to its progress(), both on the
 * feed's thread; keeping the events and judging staleness are the
 * caller's (store_edge.c). */
#ifndef REVOKD_EDGE_FEED_H
#define REVOKD_EDGE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest event id taken from a feed, NUL included. Central's are Redis
 * stream ids, "<ms>-<seq>", at most 41 characters. */
#define EDGE_FEED_ID_MAX 48
/* Events asked for per page. */
#define EDGE_FEED_PAGE 1000
/* Largest page read: a thousand events of the longest fields central
 * writes fit in a quarter of it. */
#define EDGE_FEED_PAGE_MAX_BYTES (8 * 1024 * 1024)
/* Largest answer to a forwarded call relayed (central's are under 1 KiB,
 * but a reload error may list many mistakes). */
#define EDGE_FEED_ANSWER_MAX_BYTES (64 * 1024)

enum edge_feed_kind { EDGE_FEED_JTI, EDGE_FEED_SUBJECT };

/* One event of the feed. Its strings live during apply() only. */
struct edge_feed_event {
    const char *id;
    enum edge_feed_kind kind;
    const char *iss;   /* the namespace: "" for the tokens without iss */
    const char *jti;   /* JTI; else NULL */
    const char *sub;   /* SUBJECT; else NULL */
    int64_t exp;       /* unix seconds: when central's record ends; 0 when the event does not say */
    int64_t cutoff;    /* SUBJECT: tokens issued at or before it are revoked */
};

/* How a poll ended: X(name, description). */
#define EDGE_FEED_RESULTS(X)                                                                      \
    X(events, "a page of events")                                                                 \
    X(empty, "no event within the wait: central is there and has nothing new")                   \
    X(network_error, "no answer: connection, TLS or timeout")                                     \
    X(http_error, "an HTTP status other than 200")                                               \
    X(too_large, "a page over EDGE_FEED_PAGE_MAX_BYTES")                                          \
    X(invalid, "not a page of events this node can apply")                                       \
    X(full, "this node could not hold an event (REVOKD_EDGE_MAX_REVOCATIONS)")

#define EDGE_FEED_ENUM(name, text) EDGE_FEED_##name,
enum edge_feed_result { EDGE_FEED_RESULTS(EDGE_FEED_ENUM) EDGE_FEED_NRESULTS };
#undef EDGE_FEED_ENUM

const char *edge_feed_result_name(enum edge_feed_result r);

/* How forwarded calls ended. */
#define EDGE_FEED_FORWARDS(X)                                                                     \
    X(ok, "central accepted it (2xx), and this node read it in the feed")                        \
    X(unsynced, "central accepted it, and this node had not read it in the feed in time")        \
    X(refused, "central answered with an error status, relayed")                                 \
    X(unavailable, "no usable answer from central")

#define EDGE_FEED_FORWARD_ENUM(name, text) EDGE_FEED_FORWARD_##name,
enum edge_feed_forward_result { EDGE_FEED_FORWARDS(EDGE_FEED_FORWARD_ENUM) EDGE_FEED_NFORWARDS };
#undef EDGE_FEED_FORWARD_ENUM

const char *edge_feed_forward_name(enum edge_feed_forward_result r);

/* How the feed stands, after each poll and at least once a second. */
struct edge_feed_progress {
    bool polled;                  /* a poll just ended (else: a tick) */
    enum edge_feed_result result; /* of the poll that just ended */
    long status;                  /* its HTTP status; 0: none */
    const char *error;            /* why it failed; NULL when it did not */
    const char *last_id;          /* the last event applied; "0" before any */
    bool replayed;                /* a page came back short since the start */
    bool behind;                  /* central acknowledged a forwarded revocation that this node
                                     has not read in the feed yet (forward_result unsynced) */
    int64_t heard_ms;             /* loop_now_ms() when a poll last succeeded; 0: never */
    size_t events;                /* applied by this poll */
};

/* A request to forward, as received (path and query still percent-
 * encoded). Copied by edge_feed_forward(). */
struct edge_feed_request {
    const char *method, *path;
    const char *query;           /* NULL: none */
    const char *content_type;    /* NULL: none */
    const char *authorization;   /* NULL: none */
    const char *request_id;      /* sent as X-Request-Id; NULL: none */
    const char *body;
    size_t body_len;
};

/* Central's answer to a forwarded request, valid during answered() only. */
struct edge_feed_answer {
    enum edge_feed_forward_result result;
    long status;                  /* central's, unless unavailable */
    const char *body;             /* "" for none; JSON otherwise (checked) */
    size_t len;
    const char *retry_after;      /* NULL: none */
    const char *www_authenticate; /* NULL: none */
    const char *error_code;       /* the body's "error", NULL: none */
    const char *error;            /* why, when unavailable or unsynced */
};

typedef void (*edge_feed_answered)(void *arg, const struct edge_feed_answer *a);

struct edge_feed_opts {
    const char *url;        /* the feed: .../v1/events, checked by config.c */
    const char *admin_url;  /* where admin calls (/v1/admin/...) are forwarded; "" or NULL: url's address */
    const char *key;        /* the feed credential, sent as Authorization: Bearer */
    const char *ca_file;    /* "" or NULL: the system's CA certificates */
    const char *user_agent;
    int64_t wait_s;         /* how long the stream may be silent before it is taken for dead */
    int64_t timeout_ms;     /* connect; a page; a forwarded call */
    /* On the feed's thread. apply() returns 0, or -1 when the event could
     * not be kept: the poll then ends (full) before it, and the event is
     * asked for again by the next one. */
    int (*apply)(void *arg, const struct edge_feed_event *e);
    void (*progress)(void *arg, const struct edge_feed_progress *p);
    void *arg;
};

struct edge_feed;

/* Reads one page, text of len bytes: {"events": [...], "next": "<id>"},
 * holding at most limit events with ids after after, in order. Every event
 * is checked before any reaches each(), so a page is applied whole or not
 * at all (short of each() refusing one: then the rest are not passed, and
 * *count says how many were). The id to read after next goes into next
 * (EDGE_FEED_ID_MAX bytes). Returns 0; -1 with the reason in err when the
 * page is refused; -2 when each() refused an event, next then being the
 * last event kept (or after). The feed's own reader, public for the
 * tests. */
int edge_feed_parse(const char *text, size_t len, const char *after, size_t limit,
                    int (*each)(void *arg, const struct edge_feed_event *e), void *arg, char *next,
                    size_t *count, char *err, size_t errlen);

/* The event of central's stream being read, between its lines. */
struct edge_feed_stream {
    char id[EDGE_FEED_ID_MAX]; /* its "id:" field; "" before one */
    bool bad_id;               /* that field was too long to be an id */
    bool has_data;             /* its "data:" line came */
};

/* What a line of the stream was. */
enum edge_feed_line {
    EDGE_FEED_LINE_FIELD, /* a field, or the blank line ending an event: nothing to note */
    EDGE_FEED_LINE_HEARD, /* a comment (": heartbeat"): everything before it has been sent */
    EDGE_FEED_LINE_EVENT, /* an event, passed to each() */
    EDGE_FEED_LINE_OLD,   /* an event not after after: applied already, skipped */
};

/* Reads one line of central's event stream (GET /v1/events as
 * text/event-stream), line of n bytes without its end (LF, or CR LF),
 * into s (zeroed at the stream's start). An event's "data:" is one line,
 * its JSON checked as a page's events are; it must carry the stream's
 * "id:", and goes to each() when it comes after after. Returns what the
 * line was, or -1 with the reason in err when it is not a stream this
 * node can follow (then the stream is dropped), or -2 when each() refused
 * the event. */
int edge_feed_stream_line(struct edge_feed_stream *s, const char *line, size_t n, const char *after,
                          int (*each)(void *arg, const struct edge_feed_event *e), void *arg, char *err,
                          size_t errlen);

/* Starts the thread: the feed is replayed from the start. NULL with the
 * reason in err. */
struct edge_feed *edge_feed_start(const struct edge_feed_opts *opts, char *err, size_t errlen);

/* Sends r to the central service (the feed's URL without /v1/events, then
 * r's path and query) with r's method, Content-Type, Authorization and
 * body. answered(arg, answer) runs on the feed's thread once central
 * answered and, for a 2xx answer, once this node has read the feed past
 * it: a check that follows the answer sees the revocation. When that takes
 * longer than timeout_ms, the answer is given anyway (result unsynced) and
 * progress() reports the node behind until the feed catches up. Cheap and
 * safe from any thread; answered() runs exactly once, inside
 * edge_feed_stop() at the latest. */
void edge_feed_forward(struct edge_feed *f, const struct edge_feed_request *r, edge_feed_answered answered,
                       void *arg);

/* Counts for /metrics. */
struct edge_feed_stats {
    uint64_t polls[EDGE_FEED_NRESULTS];
    uint64_t forwards[EDGE_FEED_NFORWARDS];
    uint64_t events[2]; /* applied, by enum edge_feed_kind */
};
void edge_feed_stats(struct edge_feed *f, struct edge_feed_stats *out);

/* Replaces the feed's credential, from any thread: a page or stream begun
 * from now on carries it (one already open goes on with the old one, until
 * central ends it, as a reload of central's keys does). Returns 0, or -1
 * when out of memory (the old key stays). */
int edge_feed_set_key(struct edge_feed *f, const char *key);

/* Stops the thread, answers every forwarded call still open (unavailable)
 * and frees f. NULL is a no-op. */
void edge_feed_stop(struct edge_feed *f);

#endif
