/* addr_limit.c - a lock and an open-addressing table of counts, keyed by
 * the client's address; see addr_limit.h.
 *
 * An IPv4 address is kept as its IPv4-mapped IPv6 form, so one key type
 * serves both families. Linear probing with backward-shift deletion keeps
 * the table free of tombstones however connections come and go. */
#include "revokd/addr_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    unsigned char key[16];
    unsigned count; /* 0: empty */
};

struct addr_limit {
    pthread_mutex_t lock;
    unsigned max;
    size_t mask; /* size - 1; the size is a power of two above twice the capacity */
    size_t used; /* slots with a count */
    struct slot *slots;
};

static void key_of(const struct sockaddr *addr, unsigned char key[16])
{
    memset(key, 0, 16);
    if (addr->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
    } else if (addr->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    }
}

static size_t hash(const unsigned char key[16], size_t mask)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 0x100000001b3ULL;
    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The slot holding key, or the empty slot where it would go. */
static struct slot *find(struct addr_limit *l, const unsigned char key[16])
{
    size_t i = hash(key, l->mask);
    while (l->slots[i].count != 0 && memcmp(l->slots[i].key, key, 16) != 0)
        i = (i + 1) & l->mask;
    return &l->slots[i];
}

struct addr_limit *addr_limit_new(unsigned capacity, unsigned max)
{
    struct addr_limit *l = calloc(1, sizeof(*l));
    size_t size = 16;

    while (size < 2 * (size_t)capacity + 2)
        size *= 2;
    if (l == NULL || (l->slots = calloc(size, sizeof(*l->slots))) == NULL) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->max = max;
    l->mask = size - 1;
    return l;
}

void addr_limit_free(struct addr_limit *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l->slots);
    free(l);
}

unsigned addr_limit_count(struct addr_limit *l, const struct sockaddr *addr)
{
    unsigned char key[16];
    key_of(addr, key);
    pthread_mutex_lock(&l->lock);
    unsigned n = find(l, key)->count;
    pthread_mutex_unlock(&l->lock);
    return n;
}

bool addr_limit_take(struct addr_limit *l, const struct sockaddr *addr)
{
    unsigned char key[16];
    bool taken = true;

    key_of(addr, key);
    pthread_mutex_lock(&l->lock);
    struct slot *s = find(l, key);
    if (s->count >= l->max) {
        taken = false;
    } else if (s->count == 0) {
        /* At most half full keeps probe runs short (and find() finite). */
        if (l->used >= (l->mask + 1) / 2) {
            taken = false;
        } else {
            memcpy(s->key, key, 16);
            l->used++;
        }
    }
    if (taken)
        s->count++;
    pthread_mutex_unlock(&l->lock);
    return taken;
}

void addr_limit_release(struct addr_limit *l, const struct sockaddr *addr)
{
    unsigned char key[16];

    key_of(addr, key);
    pthread_mutex_lock(&l->lock);
    struct slot *s = find(l, key);
    if (s->count > 1 || s->count == 0) {
        if (s->count > 0)
            s->count--;
        pthread_mutex_unlock(&l->lock);
        return;
    }
    /* The last one: empty the slot and shift later entries of the probe
     * run back, so that every key stays reachable from its home slot. */
    size_t hole = (size_t)(s - l->slots), i = hole;
    for (;;) {
        i = (i + 1) & l->mask;
        if (l->slots[i].count == 0)
            break;
        size_t home = hash(l->slots[i].key, l->mask);
        /* Move slot i into the hole unless its home lies cyclically in
         * (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            l->slots[hole] = l->slots[i];
            hole = i;
        }
    }
    l->slots[hole].count = 0;
    l->used--;
    pthread_mutex_unlock(&l->lock);
}
