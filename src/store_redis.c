/* store_redis.c - the Redis store: its settings, its operations table and,
 * in Sentinel mode, where the primary is.
 *
 * A watcher thread re-confirms the primary with a majority of Sentinels at
 * an interval and follows their +switch-master notices; workers read the
 * result (store_redis_primary) when they connect and drop their connections
 * when the generation moves. The workers' own connections are in
 * store_redis_conn.c. */
#include "revokd/store_redis.h"
#include "store_redis_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include "revokd/loop.h"
#include "revokd/log.h"
#include "revokd/store_key.h"

static struct timeval tv_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static void redis_free(struct store *base);
static const struct store_ops redis_ops;

struct store *store_redis_new(const struct store_redis_opts *o, char *err, size_t errlen)
{
    struct store_redis *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &redis_ops;
    pthread_mutex_init(&s->lock, NULL);
    unsigned char id[16];
    if (RAND_bytes(id, sizeof(id)) != 1) {
        snprintf(err, errlen, "no randomness for the store's marker");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(s->candidate + 2 * i, 3, "%02x", id[i]);
    s->timeout_ms = o->timeout_ms;
    s->max_pending = o->max_pending;
    s->min_replicas = o->min_replicas;
    s->replication_timeout_ms = o->replication_timeout_ms;
    s->role_check_ms = o->role_check_ms;
    s->redis = o->redis;
    s->sentinels = o->sentinels;
    s->master = o->master;
    s->source = o->source;
    if ((s->prefix = strdup(o->prefix)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return &s->base;

fail:
    redis_free(&s->base);
    return NULL;
}

/* ---- the primary ---- */

void store_redis_primary_forget(struct store_redis *s, unsigned seen_generation)
{
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->generation) == seen_generation) {
        s->primary_known = false;
        atomic_fetch_add(&s->generation, 1);
    }
    pthread_mutex_unlock(&s->lock);
}

static void primary_set(struct store_redis *s, const char *host, int port)
{
    pthread_mutex_lock(&s->lock);
    if (!s->primary_known || strcmp(s->primary.host, host) != 0 || s->primary.port != port) {
        snprintf(s->primary.host, sizeof(s->primary.host), "%s", host);
        s->primary.port = port;
        s->primary_known = true;
        atomic_fetch_add(&s->generation, 1);
    }
    atomic_store(&s->confirmed_ms, loop_now_ms());
    pthread_mutex_unlock(&s->lock);
}

bool store_redis_confirmed(struct store_redis *s)
{
    return loop_now_ms() - atomic_load(&s->confirmed_ms) <= 2 * (int64_t)s->role_check_ms + s->timeout_ms;
}

/* A blocking connection to a Sentinel, from s->source when set. hiredis
 * 0.14 binds only non-blocking connects, so that one is awaited here and
 * then made blocking, as redisConnectWithTimeout leaves its context. */
static redisContext *connect_tcp(const struct store_redis *s, const struct config_endpoint *ep)
{
    redisContext *ctx;

    if (s->source == NULL) {
        ctx = redisConnectWithTimeout(ep->host, ep->port, tv_of(s->timeout_ms));
    } else if ((ctx = redisConnectBindNonBlock(ep->host, ep->port, s->source)) != NULL && ctx->err == 0) {
        struct pollfd p = {.fd = ctx->fd, .events = POLLOUT};
        int err = ETIMEDOUT, n = poll(&p, 1, s->timeout_ms);
        socklen_t len = sizeof(err);
        if (n == 1 && getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
            fcntl(ctx->fd, F_SETFL, fcntl(ctx->fd, F_GETFL) & ~O_NONBLOCK) == 0) {
            ctx->flags |= REDIS_BLOCK;
        } else {
            ctx->err = REDIS_ERR_IO;
            snprintf(ctx->errstr, sizeof(ctx->errstr), "connect: %s", strerror(err != 0 ? err : errno));
        }
    }
    if (ctx != NULL && ctx->err == 0) {
        redisSetTimeout(ctx, tv_of(s->timeout_ms));
        store_redis_bound_reader(ctx->reader);
    }
    return ctx;
}

static redisReplyObjectFunctions bounded_functions;
static void *(*create_array)(const redisReadTask *task, int elements);

static void *create_bounded_array(const redisReadTask *task, int elements)
{
    return elements > STORE_REDIS_MAX_ELEMENTS ? NULL : create_array(task, elements);
}

static void bounded_functions_init(void)
{
    redisReader *r = redisReaderCreate();
    if (r == NULL)
        abort();
    bounded_functions = *r->fn;
    create_array = r->fn->createArray;
    bounded_functions.createArray = create_bounded_array;
    redisReaderFree(r);
}

void store_redis_bound_reader(redisReader *reader)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, bounded_functions_init);
    reader->fn = &bounded_functions;
}

/* Asks every Sentinel for the primary and adopts the address that a
 * majority of them name. Returns 0 when a majority agreed, else -1. */
static int sentinel_confirm(struct store_redis *s)
{
    struct config_endpoint seen[CONFIG_ENDPOINTS_MAX];
    int votes[CONFIG_ENDPOINTS_MAX] = {0}, distinct = 0;

    for (int i = 0; i < s->sentinels->n; i++) {
        redisContext *ctx = connect_tcp(s, &s->sentinels->at[i]);
        redisReply *r = NULL;
        if (ctx != NULL && ctx->err == 0)
            r = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", s->master);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
            strlen(r->element[0]->str) < CONFIG_HOST_MAX) {
            struct config_endpoint ep;
            snprintf(ep.host, sizeof(ep.host), "%s", r->element[0]->str);
            ep.port = atoi(r->element[1]->str);
            int j = 0;
            while (j < distinct && (strcmp(seen[j].host, ep.host) != 0 || seen[j].port != ep.port))
                j++;
            if (j == distinct)
                seen[distinct++] = ep;
            votes[j]++;
        }
        freeReplyObject(r);
        if (ctx != NULL)
            redisFree(ctx);
    }
    for (int j = 0; j < distinct; j++) {
        if (votes[j] > s->sentinels->n / 2 && seen[j].port > 0 && seen[j].port < 65536) {
            primary_set(s, seen[j].host, seen[j].port);
            return 0;
        }
    }
    return -1;
}

bool store_redis_primary(struct store_redis *s, struct config_endpoint *ep, unsigned *gen)
{
    pthread_mutex_lock(&s->lock);
    bool known = s->primary_known && store_redis_confirmed(s);
    *ep = s->primary;
    *gen = atomic_load(&s->generation);
    pthread_mutex_unlock(&s->lock);
    return known;
}

static bool redis_up(struct store *base)
{
    return atomic_load(&((struct store_redis *)base)->up);
}

static bool redis_data_lost(struct store *base)
{
    return atomic_load(&((struct store_redis *)base)->data_lost);
}

bool store_redis_epoch_holds(struct store_redis *s, const char *found)
{
    bool holds, was = atomic_load(&s->data_lost);

    pthread_mutex_lock(&s->lock);
    if (s->epoch[0] == '\0') {
        /* The first marker this node sees, or the one its probe wrote. */
        snprintf(s->epoch, sizeof(s->epoch), "%s", found != NULL ? found : s->candidate);
        atomic_store(&s->adopted, true);
        holds = true;
    } else {
        holds = found != NULL && strcmp(found, s->epoch) == 0;
    }
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->data_lost, !holds);
    if (!holds && !was)
        log_msg(LOG_ERROR, "store_data_lost",
                "the store's marker %s: Redis lost its data (FLUSHALL, or a restart without "
                "persistence), and revocations made before are gone; /readyz answers 503 until "
                "they are restored or revokd is restarted",
                found == NULL ? "is gone" : "was replaced");
    else if (holds && was)
        log_msg(LOG_WARN, "store_data_restored", "the store's marker is back");
    return holds;
}

/* ---- Sentinel watcher ---- */

/* Subscribes to +switch-master on one Sentinel. Returns the context or NULL. */
static redisContext *subscribe(struct store_redis *s, const struct config_endpoint *sentinel)
{
    redisContext *ctx = connect_tcp(s, sentinel);
    redisReply *r = NULL;

    if (ctx != NULL && ctx->err == 0) {
        /* Reads time out so the loop can confirm the primary and notice
         * shutdown. */
        redisSetTimeout(ctx, tv_of(s->role_check_ms < 1000 ? s->role_check_ms : 1000));
        r = redisCommand(ctx, "SUBSCRIBE +switch-master");
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        if (ctx != NULL)
            redisFree(ctx);
        return NULL;
    }
    freeReplyObject(r);
    return ctx;
}

/* Handles one pub/sub message: ["message", "+switch-master",
 * "name old-ip old-port new-ip new-port"]. */
static void on_notice(struct store_redis *s, const redisReply *m)
{
    char name[128], oldip[CONFIG_HOST_MAX], newip[CONFIG_HOST_MAX];
    int oldport, newport;

    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || m->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (sscanf(m->element[2]->str, "%127s %255s %d %255s %d", name, oldip, &oldport, newip,
               &newport) == 5 &&
        strcmp(name, s->master) == 0 && newport > 0 && newport < 65536) {
        primary_set(s, newip, newport);
        log_msg(LOG_WARN, "store_failover", "Sentinel moved the primary from %s:%d to %s:%d", oldip,
                oldport, newip, newport);
    }
}

/* The watcher: re-confirms the primary with a Sentinel majority every
 * role_check_ms, and moves the shared primary the moment a +switch-master
 * notice arrives, so workers leave a demoted server before their next ROLE
 * check. */
static void *watch_sentinels(void *arg)
{
    struct store_redis *s = arg;
    redisContext *sub = NULL;
    int next = 0;
    int64_t confirm_at = 0;

    while (!atomic_load(&s->stopping)) {
        if (sub == NULL) {
            sub = subscribe(s, &s->sentinels->at[next]);
            next = (next + 1) % s->sentinels->n;
        }
        if (loop_now_ms() >= confirm_at) {
            if (sentinel_confirm(s) < 0)
                log_msg(LOG_WARN, "store_unconfirmed",
                        "no majority of Sentinels names a primary for \"%s\"", s->master);
            confirm_at = loop_now_ms() + s->role_check_ms;
        }
        if (sub == NULL) {
            usleep(100 * 1000);
            continue;
        }
        void *msg = NULL;
        if (redisGetReply(sub, &msg) == REDIS_OK) {
            on_notice(s, msg);
            freeReplyObject(msg);
        } else if (sub->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A read timeout, not a failure: hiredis marks the context as
             * failed, but its buffers are intact. */
            sub->err = 0;
            sub->errstr[0] = '\0';
        } else {
            redisFree(sub);
            sub = NULL;
        }
    }
    if (sub != NULL)
        redisFree(sub);
    return NULL;
}

static int redis_start(struct store *base)
{
    struct store_redis *s = (struct store_redis *)base;

    if (!store_redis_sentinel_mode(s))
        return 0;
    if (pthread_create(&s->watcher, NULL, watch_sentinels, s) != 0)
        return -1;
    s->watcher_started = true;
    return 0;
}

static void redis_free(struct store *base)
{
    struct store_redis *s = (struct store_redis *)base;

    atomic_store(&s->stopping, true);
    if (s->watcher_started)
        pthread_join(s->watcher, NULL);
    pthread_mutex_destroy(&s->lock);
    free(s->prefix);
    free(s);
}

static const struct store_ops redis_ops = {
    .start = redis_start,
    .free = redis_free,
    .conn_new = store_redis_conn_new,
    .conn_free = store_redis_conn_free,
    .call = store_redis_conn_call,
    .up = redis_up,
    .data_lost = redis_data_lost,
};
