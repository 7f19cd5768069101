/* store_set.h - revocation records held in memory: each revoked jti until
 * the token could no longer be accepted, each subject's revoke-all cutoff
 * until no token it covers could be. The table of both in-memory stores:
 * store_edge.h (an edge's copy of the central service's revocations) and
 * store_memory.h (the handlers' test double).
 *
 * A record is keyed as Redis keys one, by store_key_digest() and its kind,
 * and sits in one open-addressing table of 32-byte slots (linear probing,
 * deletion by backward shift, so no tombstones build up). The table doubles
 * when three quarters full, so a record costs 32 bytes over the table's
 * load, between 3/8 and 3/4: 43 to 85 bytes, store_set_counts() says how
 * many exactly. A record past its time is never reported revoked, and
 * store_set_sweep() drops it.
 *
 * Nothing here locks: the caller keeps writers apart and readers away
 * from a write (store_edge.c: a read-write lock, checks sharing it; only
 * store_set_grown() reads while another table is built, so a large table
 * can be copied without stopping the readers). */
#ifndef REVOKD_STORE_SET_H
#define REVOKD_STORE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/store_key.h"

struct store_set;

/* An empty set that will hold at most max records (at least 1). NULL when
 * out of memory. */
struct store_set *store_set_new(size_t max);
/* NULL is a no-op. */
void store_set_free(struct store_set *s);

/* Revokes the jti of digest d until until (unix seconds). Returns 0 when
 * that changed the set (a new record, or a later time); 1 when it did not
 * (until <= now: the token is dead already; or the record lasts as long
 * already: a record is extended, never shortened); -1 when the set has no
 * room for a new record (store_set_full()). */
int store_set_revoke_jti(struct store_set *s, const unsigned char d[STORE_KEY_DIGEST_BYTES], int64_t until,
                         int64_t now);

/* Moves the cutoff of the subject of digest d forward to cutoff, never
 * back, keeping the record until until at least. *in_force (may be NULL)
 * gets the cutoff in force afterwards. Returns 0 when the cutoff moved (or
 * is new), 1 when it stayed (then nothing changed, as in Redis), -1 when
 * the set has no room for a new record. */
int store_set_revoke_all(struct store_set *s, const unsigned char d[STORE_KEY_DIGEST_BYTES], int64_t cutoff,
                         int64_t until, int64_t now, int64_t *in_force);

/* Whether a token is revoked at now: its jti record is there, or sub (NULL:
 * the token has none) has a cutoff at or after iat. */
bool store_set_is_revoked(const struct store_set *s, const unsigned char jti[STORE_KEY_DIGEST_BYTES],
                          const unsigned char *sub, int64_t iat, int64_t now);

/* Whether a new record would not fit: the table must grow first
 * (store_set_grown), or the set holds its max already. */
bool store_set_full(const struct store_set *s);

/* A new set with twice the slots, holding the records of s still in force
 * at now; s is only read. NULL when out of memory, or when s may not grow
 * (it is as large as max records need). Swap it in with store_set_swap()
 * and free what it leaves. */
struct store_set *store_set_grown(const struct store_set *s, int64_t now);

/* Exchanges the contents of a and b. */
void store_set_swap(struct store_set *a, struct store_set *b);

/* Drops the records past their time among the next slots slots, going
 * round the table from where the last sweep stopped. Returns how many went. */
size_t store_set_sweep(struct store_set *s, size_t slots, int64_t now);

/* Drops every record. */
void store_set_clear(struct store_set *s);

struct store_set_counts {
    size_t jti, sub;  /* records held, the swept-out ones excepted */
    size_t slots;     /* the table's size */
    size_t bytes;     /* memory the set takes, table included */
};
void store_set_counts(const struct store_set *s, struct store_set_counts *out);

#endif
