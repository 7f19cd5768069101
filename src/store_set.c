/* store_set.c - revocation records in one open-addressing table; see
 * store_set.h. */
#include "revokd/store_set.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* One record, or an empty slot (kind 0). 32 bytes: two to a cache line. */
struct slot {
    unsigned char digest[STORE_KEY_DIGEST_BYTES];
    unsigned char kind; /* 0, STORE_KEY_JTI or STORE_KEY_SUB */
    int64_t until;      /* unix seconds: the record is dropped then */
    int64_t cutoff;     /* a subject's: tokens issued at or before it are revoked */
};

static_assert(sizeof(struct slot) == 32, "a slot is 32 bytes");

/* The first table; it doubles from there. */
#define MIN_SLOTS 64

struct store_set {
    struct slot *slots;
    size_t mask;        /* slots - 1; the size is a power of two */
    size_t used;        /* records in the table */
    size_t jti;         /* of which jti records */
    size_t max;         /* records allowed */
    size_t max_slots;   /* the largest table max records need */
    size_t cursor;      /* where the next sweep starts */
};

/* Three quarters: beyond it linear probing's misses (most lookups are
 * misses: most tokens are not revoked) walk long runs. */
static size_t load_limit(size_t slots)
{
    return slots / 4 * 3;
}

struct store_set *store_set_new(size_t max)
{
    struct store_set *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->max = max > 0 ? max : 1;
    s->max_slots = MIN_SLOTS;
    while (load_limit(s->max_slots) < s->max && s->max_slots <= SIZE_MAX / 4 / sizeof(struct slot))
        s->max_slots *= 2;
    if ((s->slots = calloc(MIN_SLOTS, sizeof(struct slot))) == NULL) {
        free(s);
        return NULL;
    }
    s->mask = MIN_SLOTS - 1;
    return s;
}

void store_set_free(struct store_set *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s);
}

/* The digests are SHA-256 output: any 8 of their bytes are as good a hash
 * as any other. */
static size_t home(const struct store_set *s, const unsigned char *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return (size_t)h & s->mask;
}

/* The slot of (kind, d), or of the empty slot where it would go. */
static size_t probe(const struct store_set *s, unsigned char kind, const unsigned char *d)
{
    size_t i = home(s, d);

    while (s->slots[i].kind != 0 &&
           !(s->slots[i].kind == kind && memcmp(s->slots[i].digest, d, STORE_KEY_DIGEST_BYTES) == 0))
        i = (i + 1) & s->mask;
    return i;
}

/* Empties slot i, moving back each later record of its run that may sit
 * earlier (its home is not cyclically within (i, j]), so that every record
 * stays reachable from its home without tombstones. */
static void delete_at(struct store_set *s, size_t i)
{
    size_t j = i;

    if (s->slots[i].kind == STORE_KEY_JTI)
        s->jti--;
    s->used--;
    for (;;) {
        j = (j + 1) & s->mask;
        if (s->slots[j].kind == 0)
            break;
        size_t k = home(s, s->slots[j].digest);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        s->slots[i] = s->slots[j];
        i = j;
    }
    memset(&s->slots[i], 0, sizeof(s->slots[i]));
}

bool store_set_full(const struct store_set *s)
{
    return s->used >= s->max || s->used + 1 > load_limit(s->mask + 1);
}

/* The slot for (kind, d): the record's, or a new one claimed for it (0 in
 * *fresh). -1 when a new record does not fit. */
static long claim(struct store_set *s, unsigned char kind, const unsigned char *d, bool *fresh)
{
    size_t i = probe(s, kind, d);

    *fresh = s->slots[i].kind == 0;
    if (*fresh) {
        if (store_set_full(s))
            return -1;
        memcpy(s->slots[i].digest, d, STORE_KEY_DIGEST_BYTES);
        s->slots[i].kind = kind;
        s->slots[i].until = INT64_MIN;
        s->slots[i].cutoff = INT64_MIN;
        s->used++;
        if (kind == STORE_KEY_JTI)
            s->jti++;
    }
    return (long)i;
}

int store_set_revoke_jti(struct store_set *s, const unsigned char d[STORE_KEY_DIGEST_BYTES], int64_t until,
                         int64_t now)
{
    bool fresh;

    if (until <= now)
        return 1;
    long i = claim(s, STORE_KEY_JTI, d, &fresh);
    if (i < 0)
        return -1;
    if (s->slots[i].until >= until)
        return 1; /* kept as long already */
    s->slots[i].until = until;
    return 0;
}

int store_set_revoke_all(struct store_set *s, const unsigned char d[STORE_KEY_DIGEST_BYTES], int64_t cutoff,
                         int64_t until, int64_t now, int64_t *in_force)
{
    bool fresh;
    long i = claim(s, STORE_KEY_SUB, d, &fresh);

    if (i < 0)
        return -1;
    struct slot *r = &s->slots[i];
    /* A record past its time counts as none, as in Redis. */
    bool moved = r->until <= now || r->cutoff < cutoff;
    if (moved) {
        r->cutoff = cutoff;
        if (r->until < until)
            r->until = until;
    }
    if (in_force != NULL)
        *in_force = r->cutoff;
    return moved ? 0 : 1;
}

bool store_set_is_revoked(const struct store_set *s, const unsigned char jti[STORE_KEY_DIGEST_BYTES],
                          const unsigned char *sub, int64_t iat, int64_t now)
{
    const struct slot *j = &s->slots[probe(s, STORE_KEY_JTI, jti)];

    if (j->kind != 0 && j->until > now)
        return true;
    if (sub == NULL)
        return false;
    const struct slot *c = &s->slots[probe(s, STORE_KEY_SUB, sub)];
    return c->kind != 0 && c->until > now && iat <= c->cutoff;
}

struct store_set *store_set_grown(const struct store_set *s, int64_t now)
{
    size_t slots = (s->mask + 1) * 2;

    if (slots > s->max_slots)
        return NULL;
    struct store_set *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->slots = calloc(slots, sizeof(struct slot))) == NULL) {
        free(g);
        return NULL;
    }
    g->mask = slots - 1;
    g->max = s->max;
    g->max_slots = s->max_slots;
    for (size_t i = 0; i <= s->mask; i++) {
        const struct slot *r = &s->slots[i];
        if (r->kind == 0 || r->until <= now)
            continue;
        g->slots[probe(g, r->kind, r->digest)] = *r;
        g->used++;
        g->jti += r->kind == STORE_KEY_JTI;
    }
    return g;
}

void store_set_swap(struct store_set *a, struct store_set *b)
{
    struct store_set t = *a;
    *a = *b;
    *b = t;
}

size_t store_set_sweep(struct store_set *s, size_t slots, int64_t now)
{
    size_t dropped = 0;

    if (slots > s->mask + 1)
        slots = s->mask + 1;
    s->cursor &= s->mask; /* the table may have been swapped for a smaller one */
    for (size_t n = 0; n < slots;) {
        /* A deletion may move a later record into this slot: look again.
         * Each deletion empties the table by one, so this ends. */
        if (s->slots[s->cursor].kind != 0 && s->slots[s->cursor].until <= now) {
            delete_at(s, s->cursor);
            dropped++;
        } else {
            s->cursor = (s->cursor + 1) & s->mask;
            n++;
        }
    }
    return dropped;
}

void store_set_clear(struct store_set *s)
{
    memset(s->slots, 0, (s->mask + 1) * sizeof(struct slot));
    s->used = s->jti = 0;
}

void store_set_counts(const struct store_set *s, struct store_set_counts *out)
{
    out->jti = s->jti;
    out->sub = s->used - s->jti;
    out->slots = s->mask + 1;
    out->bytes = sizeof(*s) + out->slots * sizeof(struct slot);
}
