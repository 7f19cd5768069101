/* token_cache.c - the verified-token cache: claims of tokens that verified,
 * keyed by the first 16 bytes of SHA-256 of their bytes, in shards with a
 * lock, a hash index and a FIFO each. The capacity bounds the whole cache
 * through one atomic count of live entries; a shard's ring has room beyond
 * its even share of it. Whether a hit is still acceptable (exp, nbf,
 * revocation) is the caller's to decide on every use; see token_cache.h. */
#include "revokd/token_cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/sha256.h"

/* 64 shards keep lock contention negligible for any realistic number of
 * worker threads. A shard under SHARD_MIN entries would thrash (two hot
 * tokens landing in a one-entry shard evict each other on every request),
 * so small caches use fewer, larger shards; under 2 * SHARD_MIN it is one
 * shard and the whole cache is a single FIFO. */
#define SHARDS_MAX 64
#define SHARD_MIN 16

/* Bits of entry.flags. */
enum { F_SUB = 1, F_ISS = 2, F_DERIVED = 4, F_NBF = 8, F_NBF_SET = 16, F_ISS_COMMON = 32, F_EXTRA = 64 };

/* The longest packed claims: five varints (exp, until, leeway, iat, nbf)
 * of at most 10 bytes, then jti, sub and iss, then (F_EXTRA) scope,
 * client_id and aud, with their NULs. */
#define PACKED_MAX (5 * 10 + 4 * (JWT_STR_MAX + 1) + JWT_SCOPE_MAX + 1 + JWT_AUD_MAX + 1)

/* One cached token, in a single allocation sized to fit. struct jwt_claims
 * is ~800 bytes of mostly empty arrays; at 100,000 entries that alone would
 * be 80 MB, against a 32 MB budget for the whole process. Packed, a typical
 * entry (36-byte jti, 20-byte sub, 30-byte iss) is ~133 bytes, a 144-byte
 * malloc chunk.
 *
 * data holds exp as a zigzag varint, then until, then the issuer's leeway
 * (a varint of 1-2 bytes), then iat and (when F_NBF_SET) nbf as zigzag
 * varints of their difference from exp: they sit within hours
 * of exp, so each takes 1-3 bytes instead of 8, yet any int64 round-trips
 * exactly. Then jti, sub and iss, each NUL-terminated; an iss equal to the
 * cache's common one (REVOKD_ISSUER, which every token then carries) is only
 * the flag F_ISS_COMMON, which saves 3 MB at 100,000 entries of a 30-byte
 * iss. Then, only when one of them is set (F_EXTRA), scope, client_id and
 * aud, which gateways pass on. */
struct entry {
    unsigned char key[TOKEN_CACHE_KEY_SIZE];
    unsigned char flags;
    unsigned char data[];
};

/* Entries live in ring, oldest at head; a slot emptied by an expired get
 * stays a NULL hole until the head passes it. cap is the ring's size, more
 * than the shard's share of the capacity (see token_cache_new). index is
 * open addressing with linear probing over 2 * cap slots; it never holds
 * more than cap keys, so its load stays <= 1/2, probes stay short and a
 * free slot always exists (find() relies on that to end). A slot holds 0
 * (free) or a ring position + 1, 4 bytes instead of an 8-byte pointer.
 * Aligned to a cache line so two shards' locks never share one. */
struct shard {
    alignas(64) pthread_mutex_t lock;
    struct entry **ring;
    uint32_t *index;
    size_t cap, nindex;
    size_t head, used; /* ring slots in use from head, holes included */
    size_t count;      /* live entries: used minus holes */
};

/* live counts live entries across all shards, places taken by puts in
 * progress included; it never exceeds capacity (see reserve). On its own
 * cache line: puts and drops write it, while every get reads shards. */
struct token_cache {
    struct shard *shards;
    size_t nshards, capacity;
    char iss[JWT_STR_MAX + 1]; /* the common iss; "" when none */
    alignas(64) atomic_size_t live;
    atomic_uint_fast64_t generation; /* bumped by token_cache_clear() */
};

/* ---- packing --------------------------------------------------------------- */

/* Appends v as a LEB128 varint: 7 bits a byte, least significant first, the
 * high bit set on every byte but the last. */
static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static const unsigned char *get_varint(const unsigned char *p, uint64_t *v)
{
    uint64_t r = 0;
    unsigned shift = 0;
    unsigned char b;

    do {
        b = *p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    *v = r;
    return p;
}

/* a - base, zigzagged so small differences either way take few bytes. The
 * arithmetic is modulo 2^64, so it is exact (and defined) for any pair. */
static unsigned char *put_delta(unsigned char *p, int64_t a, int64_t base)
{
    uint64_t d = (uint64_t)a - (uint64_t)base;
    return put_varint(p, (d << 1) ^ (0 - (d >> 63)));
}

static const unsigned char *get_delta(const unsigned char *p, int64_t base, int64_t *a)
{
    uint64_t z, u;

    p = get_varint(p, &z);
    u = (uint64_t)base + ((z >> 1) ^ (0 - (z & 1)));
    /* Back to int64 without relying on implementation-defined conversion. */
    *a = u <= (uint64_t)INT64_MAX ? (int64_t)u : (int64_t)(u - (uint64_t)INT64_MAX - 1) + INT64_MIN;
    return p;
}

/* Packs c and until into buf (PACKED_MAX bytes). Returns the length, or 0
 * when a string is not NUL-terminated within JWT_STR_MAX bytes: jwt_verify
 * never produces one, but an entry must never hold an unterminated one. */
static size_t pack(const struct token_cache *tc, unsigned char *buf, unsigned char *flags,
                   const struct jwt_claims *c, int64_t until)
{
    static const size_t max[6] = {JWT_STR_MAX, JWT_STR_MAX, JWT_STR_MAX, JWT_SCOPE_MAX, JWT_STR_MAX, JWT_AUD_MAX};
    const char *strs[6] = {c->jti, c->sub, c->iss, c->scope, c->client_id, c->aud};
    bool common = tc->iss[0] != '\0' && strcmp(c->iss, tc->iss) == 0;
    bool extra = c->scope[0] != '\0' || c->client_id[0] != '\0' || c->aud[0] != '\0';
    unsigned char *p = buf;

    *flags = (unsigned char)((c->has_sub ? F_SUB : 0) | (c->has_iss ? F_ISS : 0) |
                             (c->jti_derived ? F_DERIVED : 0) | (c->has_nbf ? F_NBF : 0) |
                             (c->nbf != 0 ? F_NBF_SET : 0) | (common ? F_ISS_COMMON : 0) |
                             (extra ? F_EXTRA : 0));
    p = put_delta(p, c->exp, 0);
    p = put_delta(p, until, c->exp);
    p = put_delta(p, c->leeway, 0);
    p = put_delta(p, c->iat, c->exp);
    /* Without an nbf claim jwt_verify leaves nbf 0, which is far from exp;
     * the flag saves its 5 bytes. */
    if (c->nbf != 0)
        p = put_delta(p, c->nbf, c->exp);
    for (int i = 0; i < (extra ? 6 : 3); i++) {
        size_t len = strnlen(strs[i], max[i] + 1);
        if (len > max[i])
            return 0;
        if (i == 2 && common)
            continue;
        memcpy(p, strs[i], len + 1);
        p += len + 1;
    }
    return (size_t)(p - buf);
}

/* Copies a packed string into dst (zeroed, large enough: pack() checked
 * its length). Returns the position after it. */
static const unsigned char *get_string(const unsigned char *p, char *dst)
{
    size_t len = strlen((const char *)p);
    memcpy(dst, p, len);
    return p + len + 1;
}

/* ---- one shard ------------------------------------------------------------- */

/* The key is a SHA-256 digest, so its bytes are already uniform: no further
 * hashing. An attacker cannot crowd one shard or probe run with keys of
 * their choosing, since only tokens that verified get in. Shard and index
 * use different bytes (0-3 and 4-7), so a shard's keys spread over its
 * whole index. */
static_assert(TOKEN_CACHE_KEY_SIZE >= 8, "key_bits() reads key bytes 0-7");

static uint32_t key_bits(const unsigned char *key, size_t at)
{
    return (uint32_t)key[at] << 24 | (uint32_t)key[at + 1] << 16 | (uint32_t)key[at + 2] << 8 |
           key[at + 3];
}

/* Maps 32 uniform bits onto [0, n) with a multiply, not a division. */
static size_t scale(uint32_t bits, size_t n)
{
    return (size_t)(((uint64_t)bits * n) >> 32);
}

static size_t home(const struct shard *s, const unsigned char *key)
{
    return scale(key_bits(key, 4), s->nindex);
}

/* The index slot holding key (*found set), or else the free slot where it
 * would go. memcmp rather than CRYPTO_memcmp: timing could at most tell how
 * many leading bytes a token's digest shares with a cached one, and using
 * that takes a SHA-256 preimage. */
static size_t find(const struct shard *s, const unsigned char *key, bool *found)
{
    size_t i = home(s, key);
    uint32_t v;

    while ((v = s->index[i]) != 0) {
        if (memcmp(s->ring[v - 1]->key, key, TOKEN_CACHE_KEY_SIZE) == 0) {
            *found = true;
            return i;
        }
        if (++i == s->nindex)
            i = 0;
    }
    *found = false;
    return i;
}

/* Frees index slot i, shifting later members of its probe run back so that
 * lookups need no tombstones (Knuth's Algorithm R). A member at j may fill
 * the hole at i unless its home lies cyclically in (i, j]. */
static void unindex(struct shard *s, size_t i)
{
    size_t j = i, k;
    uint32_t v;

    for (;;) {
        if (++j == s->nindex)
            j = 0;
        if ((v = s->index[j]) == 0)
            break;
        k = home(s, s->ring[v - 1]->key);
        if (i < j ? (k <= i || k > j) : (k <= i && k > j)) {
            s->index[i] = v;
            i = j;
        }
    }
    s->index[i] = 0;
}

/* Takes the entry at index slot i out of the shard; the caller frees it. */
static struct entry *drop(struct shard *s, size_t i)
{
    size_t pos = s->index[i] - 1;
    struct entry *e = s->ring[pos];

    s->ring[pos] = NULL;
    unindex(s, i);
    s->count--;
    return e;
}

/* Frees the oldest ring slot; returns its entry (NULL for a hole), which
 * the caller frees and takes out of the global count. Holes are not
 * compacted away, so a ring can fill with holes in it and evict a little
 * early; its slack beyond the shard's share, and expiry mostly following
 * insertion order (holes mostly reach the head first), make that rare. */
static struct entry *evict_oldest(struct shard *s)
{
    struct entry *e = s->ring[s->head];
    bool found;

    if (e != NULL) {
        /* Before the slot is cleared: find reads entries through ring. */
        size_t i = find(s, e->key, &found);
        assert(found);
        unindex(s, i);
        s->count--;
    }
    s->ring[s->head] = NULL;
    if (++s->head == s->cap)
        s->head = 0;
    s->used--;
    return e;
}

/* Evicts the oldest live entry, and the holes before it, and returns it;
 * NULL when the shard holds no live entry. */
static struct entry *evict_live(struct shard *s)
{
    struct entry *e = NULL;

    if (s->count == 0)
        return NULL;
    while (e == NULL)
        e = evict_oldest(s);
    return e;
}

static struct shard *shard_of(const struct token_cache *tc, const unsigned char *key)
{
    return &tc->shards[scale(key_bits(key, 0), tc->nshards)];
}

/* ---- the global count ------------------------------------------------------ */

/* Takes a place in the global count for a new entry; false when the cache
 * is full. live only ever rises from below capacity (a compare-and-swap,
 * not an add that may overshoot and then back off), so it never exceeds
 * capacity, however many threads put at once, and neither does what
 * token_cache_size reports. A place is taken before an entry goes in and
 * given back only after one came out, so the entries held never exceed
 * live. And in a full cache, the steady state of a busy one, a put only
 * reads live's cache line. */
static bool reserve(struct token_cache *tc)
{
    size_t n = atomic_load(&tc->live);

    do {
        if (n >= tc->capacity)
            return false;
    } while (!atomic_compare_exchange_weak(&tc->live, &n, n + 1));
    return true;
}

/* Gives back the place of an entry that has left the cache. */
static void release(struct token_cache *tc)
{
    atomic_fetch_sub(&tc->live, 1);
}

/* ---- the cache ------------------------------------------------------------- */

void token_cache_free(struct token_cache *tc)
{
    if (tc == NULL)
        return;
    for (size_t i = 0; i < tc->nshards; i++) {
        struct shard *s = &tc->shards[i];
        for (size_t j = 0; s->ring != NULL && j < s->cap; j++)
            free(s->ring[j]);
        free(s->ring);
        free(s->index);
        pthread_mutex_destroy(&s->lock);
    }
    free(tc->shards);
    free(tc);
}

/* The ring size of a shard whose share of the capacity is share: a quarter
 * more, rounded up, so at least one more.
 *
 * Why more at all: keys spread over the shards at random, not evenly. Give
 * each shard exactly its share and the fullest shards evict while others
 * still have room: after 100,000 distinct tokens a cache of 100,000 holds
 * only ~99,100 (the ~1% past their share that the fuller shards received
 * got evicted), and a working set the size of the cache, cycled through,
 * keeps missing on exactly those tokens. So the bound is global (live, see
 * reserve) and a shard evicts to stay within it only when the whole cache
 * is full. With 64 shards the spread of one shard's load is about
 * sqrt(share): at 100,000 (share 1,562, spread ~40) a quarter is ~10
 * spreads and no shard fills its ring; at 10,000 about 3; under ~2,000 it
 * is one or two, and a shard now and then still evicts early. */
static size_t ring_cap(size_t share)
{
    return share + (share + 3) / 4;
}

struct token_cache *token_cache_new(size_t capacity, const char *common_iss)
{
    struct token_cache *tc = aligned_alloc(alignof(struct token_cache), sizeof(*tc));
    size_t n;

    if (tc == NULL)
        return NULL;
    memset(tc, 0, sizeof(*tc));
    atomic_init(&tc->live, 0);
    atomic_init(&tc->generation, 0);
    tc->capacity = capacity;
    if (common_iss != NULL && strlen(common_iss) <= JWT_STR_MAX)
        strcpy(tc->iss, common_iss);
    if (capacity == 0)
        return tc; /* disabled: no shards, so get and put return at once */

    n = capacity / SHARD_MIN;
    n = n < 1 ? 1 : n > SHARDS_MAX ? SHARDS_MAX : n;
    /* Ring positions + 1 must fit the index's uint32_t, and index slots the
     * 32 bits scale() maps from: a share under UINT32_MAX / 4 gives rings
     * under 2^31 slots and indexes under 2^32. */
    if (capacity / n >= UINT32_MAX / 4)
        goto fail;
    tc->shards = aligned_alloc(alignof(struct shard), n * sizeof(*tc->shards));
    if (tc->shards == NULL)
        goto fail;
    memset(tc->shards, 0, n * sizeof(*tc->shards));
    for (size_t i = 0; i < n; i++) {
        struct shard *s = &tc->shards[i];
        /* The share: capacity split evenly, the first capacity % n shards
         * taking one more; the ring holds a quarter more (see ring_cap). */
        s->cap = ring_cap(capacity / n + (i < capacity % n));
        s->nindex = 2 * s->cap; /* load <= 1/2: see struct shard */
        if (pthread_mutex_init(&s->lock, NULL) != 0)
            goto fail;
        tc->nshards = i + 1; /* from here token_cache_free() cleans it up */
        s->ring = calloc(s->cap, sizeof(*s->ring));
        s->index = calloc(s->nindex, sizeof(*s->index));
        if (s->ring == NULL || s->index == NULL)
            goto fail;
    }
    return tc;

fail:
    token_cache_free(tc);
    return NULL;
}

void token_cache_key(const char *token, size_t len, unsigned char key[TOKEN_CACHE_KEY_SIZE])
{
    unsigned char digest[SHA256_BYTES];

    /* Every byte counts: any change to the token, even one the JWT parser
     * would tolerate, gives another key and so a full verification. Why 16
     * of the 32 bytes are enough: see TOKEN_CACHE_KEY_SIZE. */
    static_assert(TOKEN_CACHE_KEY_SIZE <= SHA256_BYTES, "the key is a digest prefix");
    sha256(token, len, digest);
    memcpy(key, digest, TOKEN_CACHE_KEY_SIZE);
}

bool token_cache_get(struct token_cache *tc, const unsigned char key[TOKEN_CACHE_KEY_SIZE],
                     int64_t now, struct jwt_claims *out)
{
    struct shard *s;
    struct entry *dead = NULL;
    const unsigned char *p;
    bool found;
    int64_t exp, until;

    if (tc->nshards == 0)
        return false;
    s = shard_of(tc, key);
    pthread_mutex_lock(&s->lock);
    size_t i = find(s, key, &found);
    if (found) {
        const struct entry *e = s->ring[s->index[i] - 1];
        p = get_delta(e->data, 0, &exp);
        p = get_delta(p, exp, &until);
        if (until < now) {
            /* Past exp + leeway it cannot verify again; make room now. */
            dead = drop(s, i);
            found = false;
        } else {
            /* Every byte of *out, padding and the arrays' tails included, so
             * nothing of a previous token survives into this one. */
            memset(out, 0, sizeof(*out));
            out->exp = exp;
            p = get_delta(p, 0, &out->leeway);
            p = get_delta(p, exp, &out->iat);
            if (e->flags & F_NBF_SET)
                p = get_delta(p, exp, &out->nbf);
            p = get_string(p, out->jti);
            p = get_string(p, out->sub);
            if (e->flags & F_ISS_COMMON)
                get_string((const unsigned char *)tc->iss, out->iss);
            else
                p = get_string(p, out->iss);
            if (e->flags & F_EXTRA) {
                p = get_string(p, out->scope);
                p = get_string(p, out->client_id);
                get_string(p, out->aud);
            }
            out->has_sub = e->flags & F_SUB;
            out->has_iss = e->flags & F_ISS;
            out->jti_derived = e->flags & F_DERIVED;
            out->has_nbf = e->flags & F_NBF;
            out->issuer = -1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (dead != NULL)
        release(tc);
    free(dead);
    return found;
}

void token_cache_put(struct token_cache *tc, const unsigned char key[TOKEN_CACHE_KEY_SIZE],
                     const struct jwt_claims *c, int64_t until, uint64_t generation)
{
    unsigned char buf[PACKED_MAX], flags;
    struct entry *e, *old = NULL;
    struct shard *s;
    size_t n, i;
    bool found;

    /* Callers put only tokens that verified, never a failure, and nothing
     * here says whether a token is revoked: a revocation takes effect on the
     * very next check, hit or miss. */
    if (tc->nshards == 0)
        return;
    if ((n = pack(tc, buf, &flags, c, until)) == 0)
        return;
    /* Allocated before taking the lock, to keep the critical section short.
     * Out of memory just means this token is verified again next time. */
    if ((e = malloc(sizeof(*e) + n)) == NULL)
        return;
    memcpy(e->key, key, TOKEN_CACHE_KEY_SIZE);
    e->flags = flags;
    memcpy(e->data, buf, n);

    s = shard_of(tc, key);
    pthread_mutex_lock(&s->lock);
    /* Verified with keys a clear has since withdrawn: under the shard's
     * lock, so a put either sees the new generation or lands before the
     * clear reaches this shard, which then drops it. */
    if (generation != atomic_load(&tc->generation)) {
        pthread_mutex_unlock(&s->lock);
        free(e);
        return;
    }
    i = find(s, key, &found);
    if (found) {
        /* The same bytes verified again (typically two requests that missed
         * at once): swap the entry in place, keeping its FIFO position and
         * the count. */
        size_t pos = s->index[i] - 1;
        old = s->ring[pos];
        s->ring[pos] = e;
    } else {
        if (!reserve(tc)) {
            /* The cache is full: this shard makes room by dropping its
             * oldest entry (and the holes before it, so its ring has room
             * too), whose place in the count the new one takes over. A
             * shard with nothing to drop, the other shards holding every
             * entry, caches nothing. */
            if ((old = evict_live(s)) == NULL) {
                pthread_mutex_unlock(&s->lock);
                free(e);
                return;
            }
        } else if (s->used == s->cap) {
            /* Room in the cache but not in this ring. */
            if ((old = evict_oldest(s)) != NULL)
                release(tc);
        }
        if (old != NULL)
            i = find(s, key, &found); /* unindex may have moved slots */
        size_t pos = (s->head + s->used) % s->cap;
        s->ring[pos] = e;
        s->used++;
        s->count++;
        s->index[i] = (uint32_t)(pos + 1);
    }
    pthread_mutex_unlock(&s->lock);
    free(old);
}

uint64_t token_cache_generation(struct token_cache *tc)
{
    return atomic_load(&tc->generation);
}

void token_cache_clear(struct token_cache *tc)
{
    atomic_fetch_add(&tc->generation, 1);
    for (size_t i = 0; i < tc->nshards; i++) {
        struct shard *s = &tc->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j < s->cap; j++)
            if (s->ring[j] != NULL) {
                free(s->ring[j]);
                s->ring[j] = NULL;
                release(tc);
            }
        memset(s->index, 0, s->nindex * sizeof(*s->index));
        s->head = s->used = s->count = 0;
        pthread_mutex_unlock(&s->lock);
    }
}

size_t token_cache_size(const struct token_cache *tc)
{
    /* Ahead of the shards only while a put or get is between changing the
     * count and its shard; never above capacity (see reserve). */
    return atomic_load(&tc->live);
}

size_t token_cache_capacity(const struct token_cache *tc)
{
    return tc->capacity;
}
