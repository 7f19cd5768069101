/* auth_limit.c - a token bucket of failed authentications per address, in
 * one fixed table behind one lock; see auth_limit.h. The lock is taken only
 * by calls that authenticate (admin and OAuth endpoints), never by a check. */
#include "revokd/auth_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/sha256.h"

#define SLOTS 4096
#define PROBES 8

struct bucket {
    unsigned char addr[16]; /* IPv4 mapped into 16 bytes; all zero: free */
    double tokens;
    int64_t at_ms; /* when tokens was last brought up to date */
};

struct auth_limit {
    pthread_mutex_t lock;
    double burst, per_ms;
    struct bucket slots[SLOTS];
};

struct auth_limit *auth_limit_new(int burst, int per_minute)
{
    struct auth_limit *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->burst = burst;
    l->per_ms = per_minute / 60000.0;
    return l;
}

void auth_limit_free(struct auth_limit *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* The address as 16 bytes (IPv4 as ::ffff:a.b.c.d); false for other
 * families. */
static bool key_of(const struct sockaddr *addr, unsigned char key[16])
{
    memset(key, 0, 16);
    if (addr != NULL && addr->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return true;
    }
    if (addr != NULL && addr->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
        return true;
    }
    return false;
}

static void refill(const struct auth_limit *l, struct bucket *b, int64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * l->per_ms;
        if (b->tokens > l->burst)
            b->tokens = l->burst;
    }
    b->at_ms = now_ms;
}

/* The bucket of key, made (full) when create; NULL when absent. */
static struct bucket *find(struct auth_limit *l, const unsigned char key[16], int64_t now_ms, bool create)
{
    static const unsigned char zero[16];
    unsigned char digest[SHA256_BYTES];
    struct bucket *spare = NULL;

    /* Hashed: addresses of one network would crowd one run of slots. */
    sha256(key, 16, digest);
    size_t home = ((size_t)digest[0] << 8 | digest[1]) % SLOTS;
    for (size_t i = 0; i < PROBES; i++) {
        struct bucket *b = &l->slots[(home + i) % SLOTS];
        if (memcmp(b->addr, key, 16) == 0)
            return b;
        if (memcmp(b->addr, zero, 16) == 0) {
            if (spare == NULL || memcmp(spare->addr, zero, 16) != 0)
                spare = b;
            continue;
        }
        refill(l, b, now_ms);
        if (spare == NULL || (memcmp(spare->addr, zero, 16) != 0 && b->tokens > spare->tokens))
            spare = b;
    }
    if (!create)
        return NULL;
    /* A free slot, else the one nearest a full bucket: it has failed least
     * lately, and losing its count costs little. */
    memcpy(spare->addr, key, 16);
    spare->tokens = l->burst;
    spare->at_ms = now_ms;
    return spare;
}

int auth_limit_check(struct auth_limit *l, const struct sockaddr *addr, int64_t now_ms)
{
    unsigned char key[16];
    int wait = 0;

    if (l == NULL || !key_of(addr, key))
        return 0;
    pthread_mutex_lock(&l->lock);
    struct bucket *b = find(l, key, now_ms, false);
    if (b != NULL) {
        refill(l, b, now_ms);
        if (b->tokens < 1) {
            double seconds = (1 - b->tokens) / l->per_ms / 1000;
            wait = seconds > INT32_MAX ? INT32_MAX : (int)seconds + (seconds > (int)seconds); /* rounded up */
            wait = wait < 1 ? 1 : wait;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return wait;
}

void auth_limit_failed(struct auth_limit *l, const struct sockaddr *addr, int64_t now_ms)
{
    unsigned char key[16];

    if (l == NULL || !key_of(addr, key))
        return;
    pthread_mutex_lock(&l->lock);
    struct bucket *b = find(l, key, now_ms, true);
    refill(l, b, now_ms);
    if (b->tokens > 0)
        b->tokens -= 1;
    pthread_mutex_unlock(&l->lock);
}
