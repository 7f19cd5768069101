/* event_stream.h - GET /v1/events as Server-Sent Events: the revocation
 * log (store.h) pushed to every consumer as it grows.
 *
 * One thread per node follows the log with one blocking read (STORE_READ_LOG
 * with block, on a store connection of its own) and hands each entry to every
 * consumer that is live; a second connection reads the pages of the
 * consumers still catching up. So a thousand consumers cost the store what
 * one does.
 *
 * A consumer starts after an event id ("0-0": from the start of the log,
 * every revocation in force). It first catches up, a page of up to 1,000
 * entries at a time, each read once it has sent the last; once a page comes
 * back short and reaches where the thread follows the log, it is live: the
 * entries read from then on are appended to its buffer as they come. Each
 * entry is one SSE event:
 *
 *   id: 1767225600123-0
 *   event: revocation
 *   data: {"id":"1767225600123-0","kind":"jti",...}   (event.h's JSON)
 *
 * and a comment, ": heartbeat", says that the stream is caught up: every
 * entry written before the node's last read of the log has been sent. It
 * comes once when the consumer turns live, then whenever a blocking read
 * ends without an entry (every heartbeat_ms of quiet). A
 * consumer that hears nothing for longer knows its view is stale. While the
 * store cannot be read there are no heartbeats.
 *
 * A live consumer whose buffer already holds more than buffer_max bytes
 * when entries come is cut off: its buffer goes at once, and its connection
 * is closed as soon as the transport can write to it again, or by the idle
 * timeout (REVOKD_CONNECTION_TIMEOUT) if it never can; the others are
 * untouched. It can resume from the last id it got.
 *
 * The transport (http_server.c) reads a consumer's bytes on its worker's
 * thread; when there are none it is told to suspend the connection, and is
 * told to resume it, from the stream's thread, when there are. Both happen
 * under the stream's lock, so a resume never comes before its suspend. */
#ifndef REVOKD_EVENT_STREAM_H
#define REVOKD_EVENT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "revokd/store.h"

struct event_stream;
struct event_consumer;

struct event_stream_opts {
    struct store *store;
    int64_t heartbeat_ms;  /* REVOKD_FEED_HEARTBEAT_MS */
    size_t buffer_max;     /* REVOKD_FEED_BUFFER_BYTES */
    unsigned max_consumers; /* REVOKD_FEED_MAX_CONSUMERS */
};

/* Why a consumer's stream ended: X(name, description). */
#define EVENT_STREAM_ENDS(X)                                                                 \
    X(closed, "the consumer went away")                                                      \
    X(cut_off, "its buffer was full: it read more slowly than revocations came")             \
    X(store_error, "a page of the log could not be read while it caught up")                 \
    X(reloaded, "the keys were reloaded: the consumer reconnects, and its key is judged anew") \
    X(stopped, "the node stopped")

#define EVENT_STREAM_ENUM(name, text) EVENT_STREAM_END_##name,
enum event_stream_end { EVENT_STREAM_ENDS(EVENT_STREAM_ENUM) EVENT_STREAM_NENDS };
#undef EVENT_STREAM_ENUM

const char *event_stream_end_name(enum event_stream_end e);

/* For /metrics. */
struct event_stream_stats {
    unsigned consumers;                  /* streams served (not ended) */
    uint64_t ends[EVENT_STREAM_NENDS];   /* streams ended, by why */
    uint64_t events;                     /* events queued to consumers */
};

/* The transport's side of a consumer's connection: conn and its thread's
 * context, arg, as event_stream_attach() gave them. */
struct event_stream_transport {
    void (*suspend)(void *conn, void *arg);
    void (*resume)(void *conn, void *arg);
};

/* Starts the stream's thread. NULL, with why in err, when it cannot. */
struct event_stream *event_stream_start(const struct event_stream_opts *o, char *err, size_t errlen);
/* Ends every consumer's stream (each sends what it holds, then ends), takes
 * no more, and stops the thread. Idempotent; NULL is a no-op. */
void event_stream_stop(struct event_stream *es);
/* Ends every consumer's stream in order, after what it holds, for why
 * (EVENT_STREAM_END_reloaded: a feed or admin key may have been withdrawn,
 * and only a new request judges a key). NULL is a no-op. */
void event_stream_end_all(struct event_stream *es, enum event_stream_end why);
/* Frees es, stopped first; the transport must have closed every consumer. */
void event_stream_free(struct event_stream *es);
void event_stream_stats(struct event_stream *es, struct event_stream_stats *out);

/* A new consumer of the entries after the canonical id after ("0-0": all),
 * for the log line of its end, who (the key's kind and name). NULL with
 * *why set when there is no room (REVOKD_FEED_MAX_CONSUMERS) or the node is
 * stopping. */
struct event_consumer *event_stream_open(struct event_stream *es, const char *after, const char *who,
                                         const char **why);
/* The transport's connection, before the first read. */
void event_stream_attach(struct event_consumer *c, const struct event_stream_transport *t, void *conn,
                         void *arg);
/* Copies up to size bytes of the stream into buf and returns how many; 0
 * when none are ready, once t->suspend(conn) was called; -1 when the stream
 * ended in order; -2 when it was cut off (close the connection). */
ssize_t event_stream_read(struct event_consumer *c, char *buf, size_t size);
/* The transport lets go of c (its connection closed). */
void event_stream_close(struct event_consumer *c);

#endif
