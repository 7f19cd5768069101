/* store_memory.h - a store kept in memory, the double of the Redis store in
 * the handlers' unit tests (store.h for the interface).
 *
 * It keeps revocations as Redis would (a jti until its expiry, a subject's
 * cutoff that only moves forward, the log of the changes, the data-loss
 * marker) and answers every call in the next round of the caller's loop, as
 * the interface promises; a read of the log that waits is answered once an
 * entry comes or its wait is over.
 * A test can tell it to hold its answers, fail, refuse writes for want of
 * replicas, refuse calls for overload, lose its connection or lose its data. */
#ifndef REVOKD_STORE_MEMORY_H
#define REVOKD_STORE_MEMORY_H

#include "revokd/store.h"

enum store_memory_mode {
    STORE_MEMORY_ANSWER,     /* answer every call in the next round (the default) */
    STORE_MEMORY_HOLD,       /* keep the calls until store_memory_release() */
    STORE_MEMORY_FAIL,       /* answer every call unavailable */
    STORE_MEMORY_NOREPLICAS, /* refuse writes for want of replicas: revokes fail
                                not_replicated, the probe is ready without revocations */
    STORE_MEMORY_OVERLOADED, /* refuse every call but the probe, as a full Redis link
                                does (REVOKD_STORE_MAX_PENDING) */
};

/* NULL when out of memory. */
struct store *store_memory_new(void);

/* How the calls from now on are answered. */
void store_memory_set_mode(struct store *s, enum store_memory_mode mode);

/* The held calls are answered in the next round, as the mode then says. */
void store_memory_release(struct store *s);

/* The connection is lost: the held calls fail unavailable, in the next round. */
void store_memory_drop(struct store *s);

/* The data is lost, as after FLUSHALL: every record, the log, and the
 * marker. */
void store_memory_flush(struct store *s);

/* Calls made so far. */
unsigned store_memory_calls(struct store *s);

/* The most log entries kept: beyond them the oldest goes. */
#define STORE_MEMORY_LOG_MAX 256

/* The log as it is, oldest first: up to max entries into out, whose
 * strings stay valid until the next revocation or flush. Returns how many. */
size_t store_memory_log(struct store *s, struct store_event *out, size_t max);

#endif
