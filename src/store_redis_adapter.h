/* store_redis_adapter.h - hiredis's async contexts on revokd's loop, as
 * hiredis's own adapters (adapters/ae.h) bind them to other loops. Private
 * to the Redis store.
 *
 * Two things differ from those adapters. Writes are deferred to
 * store_redis_adapter_flush(), which the connection runs before the loop
 * sleeps, so that a round's commands go out in one write; EPOLLOUT is asked
 * for only when a write could not finish. And hiredis frees a context in the
 * middle of a round of events, so a freed context's watch is kept until the
 * next flush: the loop may still report an event for it in the same round. */
#ifndef REVOKD_STORE_REDIS_ADAPTER_H
#define REVOKD_STORE_REDIS_ADAPTER_H

#include <hiredis/async.h>

struct loop;
struct store_redis_adapter;

struct store_redis_adapter *store_redis_adapter_new(struct loop *loop);
/* Frees a; every context attached to it must be freed first. */
void store_redis_adapter_free(struct store_redis_adapter *a);

/* Binds ac to the loop. Returns 0, or -1 when out of memory. */
int store_redis_adapter_attach(struct store_redis_adapter *a, redisAsyncContext *ac);

/* Writes what the attached contexts queued, and frees the watches of the
 * contexts freed since the last call. */
void store_redis_adapter_flush(struct store_redis_adapter *a);

#endif
