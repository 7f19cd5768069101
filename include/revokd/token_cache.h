/* token_cache.h - tokens whose signature and claims have already verified.
 *
 * A gateway sends the same users' tokens over and over; an RS256 signature
 * check costs about 15 us, a lookup here well under one. The key is (a
 * prefix of) SHA-256 of the whole token, so only the very bytes that
 * verified can hit: a forged or altered token differs somewhere and misses.
 * An entry holds the verified claims, never revocation state (every check
 * still asks the store), and the caller still judges exp and nbf on every
 * use. Failures are never cached.
 *
 * Safe to use from many threads: the table is split into shards, each with
 * its own lock. Bounded: the cache never holds more than its capacity, in
 * total; when it is full, the shard the new token falls in drops its oldest
 * entry (first in, first out within that shard: a hit does not make an
 * entry younger). Shards have room beyond an even split, so a cache of
 * capacity N holds any N tokens unless one shard gets over a quarter more
 * than its share of them: never in practice at the default 100,000, now
 * and then for a few entries of a small cache (see token_cache.c). A cache
 * of under 32 entries is a single shard, so a single FIFO. */
#ifndef REVOKD_TOKEN_CACHE_H
#define REVOKD_TOKEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/jwt.h"

/* The key is the first 16 bytes of SHA-256 of the token: 128 bits are
 * enough here. A hit returns the claims that were verified for the cached
 * token, so a byte string colliding with it could only stand in for a token
 * whose claims are already genuine; to hit another holder's entry takes a
 * second preimage of 128 bits, about 2^128 / 100,000 = 2^111 SHA-256
 * evaluations against a full cache of 100,000 entries. (A birthday
 * collision, 2^64, needs both strings chosen, but one of them must be a
 * token that verified, whose bytes its issuer's signature fixes.) Half the
 * key bytes save 16 bytes an entry, 1.6 MB at 100,000 entries, which counts
 * against the process's 32 MB memory budget. */
#define TOKEN_CACHE_KEY_SIZE 16

struct token_cache;

/* A cache of at most capacity tokens; 0 gives a disabled cache (every get
 * misses, put does nothing). common_iss (NULL or "" for none) is the iss
 * most tokens carry, kept once rather than in every entry. NULL when out of
 * memory. */
struct token_cache *token_cache_new(size_t capacity, const char *common_iss);
void token_cache_free(struct token_cache *tc);

/* The cache key of a token: the first TOKEN_CACHE_KEY_SIZE bytes of
 * SHA-256 of its len bytes. */
void token_cache_key(const char *token, size_t len, unsigned char key[TOKEN_CACHE_KEY_SIZE]);

/* On a hit fills *out with the claims stored for key and returns true:
 * every byte of *out is written, strings NUL-terminated and zero-padded, so
 * nothing from an earlier token remains. On a miss *out is left alone. An
 * entry whose until (see put) is before now is dropped and misses. */
bool token_cache_get(struct token_cache *tc, const unsigned char key[TOKEN_CACHE_KEY_SIZE],
                     int64_t now, struct jwt_claims *out);

/* Stores a copy of the claims of a token that verified, until unix time
 * until (its exp plus leeway: past that it could not verify anyway).
 * Replaces an entry with the same key. generation is what
 * token_cache_generation() said before the token was verified. Claims with a string not terminated
 * within JWT_STR_MAX bytes are not stored, nor is anything when memory runs
 * out: the token is simply verified again next time. */
void token_cache_put(struct token_cache *tc, const unsigned char key[TOKEN_CACHE_KEY_SIZE],
                     const struct jwt_claims *c, int64_t until, uint64_t generation);

/* The cache's generation, read before a token is verified and given to
 * token_cache_put(): a token verified while token_cache_clear() ran is not
 * stored. */
uint64_t token_cache_generation(struct token_cache *tc);

/* Forgets every entry, for when keys were withdrawn (a key set refreshed
 * without a key it had, a reload): a token verified with a key that is gone
 * must be verified again, and fail. Puts of tokens verified before the
 * clear are dropped (token_cache_generation). */
void token_cache_clear(struct token_cache *tc);

/* Entries held now, expired ones not yet dropped included; never above the
 * capacity. A put in progress may count already, so it is exact only when
 * none is, as at a quiet moment. One atomic read, no lock. */
size_t token_cache_size(const struct token_cache *tc);
/* The capacity given to token_cache_new(). */
size_t token_cache_capacity(const struct token_cache *tc);

#endif
