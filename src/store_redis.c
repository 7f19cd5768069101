/* store_redis.c - revocation records in Redis, over hiredis.
 *
 * Each thread owns one connection (hiredis contexts are not thread-safe),
 * kept in thread-local storage and dropped at the first error, since a
 * context that has seen an error is unusable. Every write is followed by WAIT
 * when replicas are required. In Sentinel mode the primary's address is
 * shared by all threads and replaced when Sentinel says it moved; each
 * connection confirms ROLE before it is used and again at an interval,
 * because a demoted primary keeps answering reads for seconds. */
#include "revokd/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "revokd/log.h"
#include "revokd/store_key.h"
#include "revokd/url.h"

#define MAX_SENTINELS 8
#define HOST_MAX 256
/* After a failed connect a thread answers "unavailable" for this long
 * instead of trying again on every request. */
#define RECONNECT_BACKOFF_MS 100

struct endpoint {
    char host[HOST_MAX];
    int port;
};

struct store {
    char *prefix;
    int timeout_ms, min_replicas, replication_timeout_ms, role_check_ms;

    /* Where Redis is: a fixed endpoint or socket, or found via Sentinel. */
    struct endpoint direct;
    char *unix_path;
    char *username, *password;
    int db;
    struct endpoint sentinels[MAX_SENTINELS];
    int nsentinels;
    char *master;

    /* Sentinel mode: the current primary, and a generation bumped whenever it
     * changes or is found wrong, so every thread drops its connection. */
    pthread_mutex_t lock;
    struct endpoint primary;
    bool primary_known;
    atomic_uint generation;
    /* When a majority of Sentinels (or a +switch-master notice) last named
     * the primary, in monotonic ms. Past the confirmation window the store
     * fails closed: a node cut off from the Sentinels may be talking to a
     * primary that has been replaced on the other side of a partition. */
    _Atomic int64_t confirmed_ms;

    pthread_key_t tls;
    pthread_t watcher;
    bool watcher_started;
    atomic_bool stopping;
};

struct conn {
    redisContext *ctx;
    unsigned generation;
    int64_t role_checked_ms;
    int64_t retry_after_ms;
    char address[300];
    char errstr[160];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* ---- configuration parsing ---- */

/* "host:port" or "[v6]:port" into ep; port defaults to def. */
static int parse_endpoint(const char *s, size_t len, int def, struct endpoint *ep)
{
    const char *end = s + len, *colon;
    size_t hostlen;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        hostlen = (size_t)(close - s - 1);
        memcpy(ep->host, s + 1, hostlen < HOST_MAX ? hostlen : 0);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (close + 1 != end && colon == NULL)
            return -1;
    } else {
        colon = memchr(s, ':', len);
        hostlen = colon ? (size_t)(colon - s) : len;
        if (hostlen < HOST_MAX)
            memcpy(ep->host, s, hostlen);
    }
    if (hostlen == 0 || hostlen >= HOST_MAX)
        return -1;
    ep->host[hostlen] = '\0';
    ep->port = def;
    if (colon != NULL) {
        char digits[8];
        size_t n = (size_t)(end - colon - 1);
        char *stop;
        if (n == 0 || n >= sizeof(digits))
            return -1;
        memcpy(digits, colon + 1, n);
        digits[n] = '\0';
        long p = strtol(digits, &stop, 10);
        if (*stop != '\0' || p < 1 || p > 65535)
            return -1;
        ep->port = (int)p;
    }
    return 0;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000)
        return -1;
    *db = (int)v;
    return 0;
}

/* redis://[[user]:password@]host[:port][/db]  or  unix:///path[?db=N] */
static int parse_url(struct store *s, const char *url)
{
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7, *q = strstr(path, "?db=");
        size_t len = q ? (size_t)(q - path) : strlen(path);
        if (path[0] != '/' || len < 2 || (q != NULL && parse_db(q + 4, &s->db) < 0))
            return -1;
        s->unix_path = strndup(path, len);
        return s->unix_path ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *rest = url + 8, *at = strrchr(rest, '@');
    if (at != NULL) {
        /* Credentials are percent-encoded in a URL ("p%40ss" is "p@ss"). */
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t ulen = colon ? (size_t)(colon - rest) : 0, plen = colon ? (size_t)(at - colon - 1) : 0;
        if (colon == NULL || (s->username = malloc(ulen + 1)) == NULL ||
            (s->password = malloc(plen + 1)) == NULL ||
            url_decode(rest, ulen, s->username, ulen + 1) < 0 ||
            url_decode(colon + 1, plen, s->password, plen + 1) < 0)
            return -1;
        if (s->username[0] == '\0') {
            free(s->username);
            s->username = NULL;
        }
        if (s->password[0] == '\0') {
            free(s->password);
            s->password = NULL;
        }
        rest = at + 1;
    }
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (parse_endpoint(rest, hostlen, 6379, &s->direct) < 0)
        return -1;
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &s->db) < 0)
        return -1;
    return 0;
}

static int parse_sentinels(struct store *s, const char *list)
{
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (s->nsentinels == MAX_SENTINELS ||
            parse_endpoint(p, len, 26379, &s->sentinels[s->nsentinels]) < 0)
            return -1;
        s->nsentinels++;
        p += len + (comma ? 1 : 0);
    }
    return s->nsentinels > 0 ? 0 : -1;
}

static void conn_destroy(void *arg)
{
    struct conn *c = arg;
    if (c == NULL)
        return;
    if (c->ctx != NULL)
        redisFree(c->ctx);
    free(c);
}

struct store *store_new(const struct store_opts *o, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_key_create(&s->tls, conn_destroy) != 0) {
        snprintf(err, errlen, "pthread_key_create failed");
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    s->timeout_ms = o->timeout_ms;
    s->min_replicas = o->min_replicas;
    s->replication_timeout_ms = o->replication_timeout_ms;
    s->role_check_ms = o->role_check_ms;
    if (store_key_prefix_valid(o->prefix) < 0) {
        snprintf(err, errlen, "REVOKD_KEY_PREFIX: 1 to %d printable characters without spaces",
                 STORE_KEY_PREFIX_MAX);
        goto fail;
    }
    if ((s->prefix = strdup(o->prefix)) == NULL || parse_url(s, o->url) < 0) {
        snprintf(err, errlen,
                 "REVOKD_REDIS_URL: expected redis://[:password@]host[:port][/db] or "
                 "unix:///path[?db=N]");
        goto fail;
    }
    if (o->sentinels != NULL && o->sentinels[0] != '\0') {
        if (parse_sentinels(s, o->sentinels) < 0) {
            snprintf(err, errlen, "REVOKD_SENTINELS: expected host:port[,host:port...] (at most %d)",
                     MAX_SENTINELS);
            goto fail;
        }
        if (o->master == NULL || o->master[0] == '\0' || (s->master = strdup(o->master)) == NULL) {
            snprintf(err, errlen, "REVOKD_SENTINEL_MASTER: a name is required with sentinels");
            goto fail;
        }
    }
    return s;

fail:
    store_free(s);
    return NULL;
}

static bool sentinel_mode(const struct store *s)
{
    return s->nsentinels > 0;
}

/* ---- connections ---- */

static struct conn *conn_of(struct store *s)
{
    struct conn *c = pthread_getspecific(s->tls);
    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL)
        pthread_setspecific(s->tls, c);
    return c;
}

static void conn_fail(struct conn *c, const char *what)
{
    snprintf(c->errstr, sizeof(c->errstr), "%.60s%s%.90s", what,
             c->ctx && c->ctx->err ? ": " : "", c->ctx && c->ctx->err ? c->ctx->errstr : "");
    if (c->ctx != NULL)
        redisFree(c->ctx);
    c->ctx = NULL;
}

/* Forgets the primary so the next connection asks Sentinel again. */
static void primary_forget(struct store *s, unsigned seen_generation)
{
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->generation) == seen_generation) {
        s->primary_known = false;
        atomic_fetch_add(&s->generation, 1);
    }
    pthread_mutex_unlock(&s->lock);
}

static void primary_set(struct store *s, const char *host, int port)
{
    pthread_mutex_lock(&s->lock);
    if (!s->primary_known || strcmp(s->primary.host, host) != 0 || s->primary.port != port) {
        snprintf(s->primary.host, sizeof(s->primary.host), "%s", host);
        s->primary.port = port;
        s->primary_known = true;
        atomic_fetch_add(&s->generation, 1);
    }
    atomic_store(&s->confirmed_ms, now_ms());
    pthread_mutex_unlock(&s->lock);
}

static bool confirmed(struct store *s)
{
    return now_ms() - atomic_load(&s->confirmed_ms) <= 2 * (int64_t)s->role_check_ms + s->timeout_ms;
}

static redisContext *connect_tcp(const struct endpoint *ep, int timeout_ms)
{
    redisContext *ctx = redisConnectWithTimeout(ep->host, ep->port, tv_of(timeout_ms));
    if (ctx != NULL && ctx->err == 0)
        redisSetTimeout(ctx, tv_of(timeout_ms));
    return ctx;
}

/* Asks every Sentinel for the primary and adopts the address that a
 * majority of them name. Returns 0 when a majority agreed, else -1. */
static int sentinel_confirm(struct store *s)
{
    struct endpoint seen[MAX_SENTINELS];
    int votes[MAX_SENTINELS] = {0}, distinct = 0;

    for (int i = 0; i < s->nsentinels; i++) {
        redisContext *ctx = connect_tcp(&s->sentinels[i], s->timeout_ms);
        redisReply *r = NULL;
        if (ctx != NULL && ctx->err == 0)
            r = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", s->master);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
            strlen(r->element[0]->str) < HOST_MAX) {
            struct endpoint ep;
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
        if (votes[j] > s->nsentinels / 2 && seen[j].port > 0 && seen[j].port < 65536) {
            primary_set(s, seen[j].host, seen[j].port);
            return 0;
        }
    }
    return -1;
}

/* Runs one command on ctx and returns the reply, or NULL (the context is then
 * unusable or the reply was an error; errstr says which). */
static redisReply *simple(redisContext *ctx, char *errstr, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        snprintf(errstr, len, "%s", ctx->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, len, "%.120s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* True when the server on ctx says it is a primary. */
static bool role_is_master(redisContext *ctx, char *errstr, size_t len)
{
    redisReply *r = simple(ctx, errstr, len, "ROLE");
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (r != NULL && !ok)
        snprintf(errstr, len, "Redis at this address is not the primary");
    freeReplyObject(r);
    return ok;
}

/* Connects this thread to the current Redis primary. Returns 0 or -1 with
 * c->errstr set. */
static int conn_open(struct store *s, struct conn *c)
{
    char why[160] = "";
    struct endpoint ep;
    unsigned gen = atomic_load(&s->generation);
    redisReply *r;

    if (s->unix_path != NULL) {
        c->ctx = redisConnectUnixWithTimeout(s->unix_path, tv_of(s->timeout_ms));
        if (c->ctx != NULL && c->ctx->err == 0)
            redisSetTimeout(c->ctx, tv_of(s->timeout_ms));
        snprintf(c->address, sizeof(c->address), "%s", s->unix_path);
    } else {
        if (sentinel_mode(s)) {
            pthread_mutex_lock(&s->lock);
            bool known = s->primary_known && confirmed(s);
            ep = s->primary;
            gen = atomic_load(&s->generation);
            pthread_mutex_unlock(&s->lock);
            /* Only the watcher thread asks the Sentinels; workers wait for
             * its answer rather than each querying them. */
            if (!known) {
                snprintf(c->errstr, sizeof(c->errstr),
                         "no primary confirmed by a majority of Sentinels for \"%s\"", s->master);
                goto fail;
            }
        } else {
            ep = s->direct;
        }
        c->ctx = connect_tcp(&ep, s->timeout_ms);
        snprintf(c->address, sizeof(c->address), "%s:%d", ep.host, ep.port);
    }
    if (c->ctx == NULL || c->ctx->err != 0) {
        conn_fail(c, "connect");
        goto fail;
    }
    if (s->password != NULL) {
        r = s->username ? simple(c->ctx, why, sizeof(why), "AUTH %s %s", s->username, s->password)
                        : simple(c->ctx, why, sizeof(why), "AUTH %s", s->password);
        if (r == NULL) {
            conn_fail(c, why);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (s->db != 0) {
        if ((r = simple(c->ctx, why, sizeof(why), "SELECT %d", s->db)) == NULL) {
            conn_fail(c, why);
            goto fail;
        }
        freeReplyObject(r);
    }
    /* Sentinel may still name a primary that has been demoted, or not yet
     * name the new one: use a connection only once the server agrees. */
    if (sentinel_mode(s) && !role_is_master(c->ctx, why, sizeof(why))) {
        conn_fail(c, why);
        primary_forget(s, gen);
        goto fail;
    }
    c->generation = gen;
    c->role_checked_ms = now_ms();
    return 0;

fail:
    c->retry_after_ms = now_ms() + RECONNECT_BACKOFF_MS;
    return -1;
}

/* The thread's connection, opened or re-checked as needed. *fresh tells
 * whether it was opened just now (a failure on it is not worth a retry). */
static struct conn *conn_get(struct store *s, bool *fresh)
{
    struct conn *c = conn_of(s);
    char why[160];

    if (c == NULL)
        return NULL;
    *fresh = false;
    if (c->ctx != NULL && sentinel_mode(s)) {
        if (c->generation != atomic_load(&s->generation)) {
            conn_fail(c, "the primary moved");
        } else if (!confirmed(s)) {
            conn_fail(c, "the Sentinels no longer confirm the primary");
        } else if (now_ms() - c->role_checked_ms >= s->role_check_ms) {
            if (role_is_master(c->ctx, why, sizeof(why))) {
                c->role_checked_ms = now_ms();
            } else {
                conn_fail(c, why);
                primary_forget(s, c->generation);
            }
        }
    }
    if (c->ctx == NULL) {
        if (now_ms() < c->retry_after_ms)
            return NULL; /* errstr still says why the last attempt failed */
        if (conn_open(s, c) < 0)
            return NULL;
        *fresh = true;
    }
    return c;
}

/* ---- commands ---- */

#define MAX_ARGS 8

struct cmd {
    int argc;
    const char *argv[MAX_ARGS];
    size_t len[MAX_ARGS];
};

static void arg(struct cmd *cmd, const char *s, size_t len)
{
    cmd->argv[cmd->argc] = s;
    cmd->len[cmd->argc++] = len;
}

#define ARG(cmd, s) arg(cmd, s, strlen(s))

static void free_replies(redisReply **r, int n)
{
    for (int i = 0; i < n; i++) {
        freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/* Sends n commands in one round trip and collects the replies. A failure on
 * a connection that had been idle (the server restarted, a proxy closed it)
 * is retried once on a new one; every command sent here is idempotent. A
 * READONLY reply means the server is no longer the primary. Returns 0 with
 * all replies, or -1 with none. */
static int exec(struct store *s, struct cmd *cmds, int n, redisReply **replies)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh;
        struct conn *c = conn_get(s, &fresh);
        int got = 0;

        if (c == NULL)
            return -1;
        for (int i = 0; i < n; i++)
            redisAppendCommandArgv(c->ctx, cmds[i].argc, cmds[i].argv, cmds[i].len);
        for (; got < n; got++)
            if (redisGetReply(c->ctx, (void **)&replies[got]) != REDIS_OK)
                break;
        if (got == n) {
            bool readonly = false;
            for (int i = 0; i < n; i++)
                readonly |= replies[i]->type == REDIS_REPLY_ERROR &&
                            strncmp(replies[i]->str, "READONLY", 8) == 0;
            if (!readonly)
                return 0;
            free_replies(replies, n);
            conn_fail(c, "READONLY: the server is no longer the primary");
            primary_forget(s, c->generation);
        } else {
            free_replies(replies, got);
            conn_fail(c, "command");
        }
        if (fresh)
            break;
    }
    return -1;
}

__attribute__((format(printf, 2, 3))) static void set_errstr(struct store *s, const char *fmt, ...)
{
    struct conn *c = conn_of(s);
    va_list ap;
    if (c == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
}

/* An error reply ends the call as "unavailable", except NOREPLICAS: the
 * primary refused the write for want of replicas, which the API reports as
 * not replicated. */
static int reply_error(struct store *s, const redisReply *r)
{
    set_errstr(s, "%.120s", r->str);
    return strncmp(r->str, "NOREPLICAS", 10) == 0 ? -STORE_ENOTREPLICATED : -STORE_EUNAVAILABLE;
}

static int parse_i64(const char *str, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(str, &end, 10);
    if (errno != 0 || end == str || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int store_is_revoked(struct store *s, const char *iss, const char *jti, const char *sub,
                     int64_t iat, bool *revoked)
{
    char jkey[STORE_KEY_SIZE], skey[STORE_KEY_SIZE];
    struct cmd cmd = {0};
    redisReply *r = NULL;
    int rc = -STORE_EUNAVAILABLE;

    ARG(&cmd, "MGET");
    arg(&cmd, jkey, store_key(jkey, s->prefix, STORE_KEY_JTI, iss, jti));
    if (sub != NULL)
        arg(&cmd, skey, store_key(skey, s->prefix, STORE_KEY_SUB, iss, sub));
    if (exec(s, &cmd, 1, &r) < 0)
        return -STORE_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        set_errstr(s, "%.120s", r->str);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != cmd.argc - 1) {
        set_errstr(s, "%s", "unexpected reply to MGET");
        goto out;
    }
    *revoked = r->element[0]->type != REDIS_REPLY_NIL;
    if (sub != NULL && r->element[1]->type != REDIS_REPLY_NIL) {
        int64_t cutoff;
        /* A record we cannot read is not proof of innocence. */
        if (r->element[1]->type != REDIS_REPLY_STRING || parse_i64(r->element[1]->str, &cutoff) < 0) {
            set_errstr(s, "%s", "unreadable revoke-all record");
            goto out;
        }
        *revoked = *revoked || iat <= cutoff;
    }
    rc = 0;
out:
    freeReplyObject(r);
    return rc;
}

/* Runs a write and, when replicas are required, WAIT on the same connection
 * (WAIT counts only this connection's writes, so it must never move to
 * another one). WAIT is sent only after the write succeeded: pipelined
 * behind a refused write (NOREPLICAS) it would still hold this worker, and
 * the checks queued behind it, for the whole replication timeout. */
static int write_durably(struct store *s, struct cmd *write, redisReply **result)
{
    redisReply *r = NULL;

    if (exec(s, write, 1, &r) < 0)
        return -STORE_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = reply_error(s, r);
        freeReplyObject(r);
        return rc;
    }
    if (s->min_replicas > 0) {
        struct conn *c = conn_of(s);
        redisSetTimeout(c->ctx, tv_of(s->timeout_ms + s->replication_timeout_ms));
        redisReply *w = redisCommand(c->ctx, "WAIT %d %d", s->min_replicas, s->replication_timeout_ms);
        if (w == NULL) {
            conn_fail(c, "WAIT");
        } else {
            redisSetTimeout(c->ctx, tv_of(s->timeout_ms));
        }
        bool enough = w != NULL && w->type == REDIS_REPLY_INTEGER && w->integer >= s->min_replicas;
        freeReplyObject(w);
        if (!enough) {
            /* The write is applied on the primary; only its durability is
             * unknown. The caller retries (revocations are idempotent). */
            set_errstr(s, "WAIT: fewer than %d replicas confirmed the write in %d ms",
                       s->min_replicas, s->replication_timeout_ms);
            freeReplyObject(r);
            return -STORE_ENOTREPLICATED;
        }
    }
    *result = r;
    return 0;
}

int store_revoke_jti(struct store *s, const char *iss, const char *jti, int64_t expires_at,
                     const char *reason)
{
    char key[STORE_KEY_SIZE], at[24];
    struct cmd cmd = {0};
    redisReply *r = NULL;

    snprintf(at, sizeof(at), "%" PRId64, expires_at);
    ARG(&cmd, "SET");
    arg(&cmd, key, store_key(key, s->prefix, STORE_KEY_JTI, iss, jti));
    ARG(&cmd, reason != NULL && reason[0] != '\0' ? reason : "1");
    /* The record lives exactly as long as the token could be accepted
     * (exp + leeway): after that the signature check alone refuses it. */
    ARG(&cmd, "EXAT");
    ARG(&cmd, at);
    int rc = write_durably(s, &cmd, &r);
    freeReplyObject(r);
    return rc;
}

/* Moves the cutoff forward only, atomically; returns the cutoff in force. */
static const char revoke_all_script[] =
    "local old = tonumber(redis.call('GET', KEYS[1]))\n"
    "local new = tonumber(ARGV[1])\n"
    "if old == nil or old < new then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
    "  return new\n"
    "end\n"
    "return old\n";

int store_revoke_all(struct store *s, const char *iss, const char *sub, int64_t cutoff,
                     int64_t ttl, int64_t *effective)
{
    char key[STORE_KEY_SIZE], c[24], t[24];
    struct cmd cmd = {0};
    redisReply *r = NULL;

    snprintf(c, sizeof(c), "%" PRId64, cutoff);
    snprintf(t, sizeof(t), "%" PRId64, ttl);
    ARG(&cmd, "EVAL");
    ARG(&cmd, revoke_all_script);
    ARG(&cmd, "1");
    arg(&cmd, key, store_key(key, s->prefix, STORE_KEY_SUB, iss, sub));
    ARG(&cmd, c);
    ARG(&cmd, t);
    int rc = write_durably(s, &cmd, &r);
    if (rc == 0) {
        if (r->type == REDIS_REPLY_INTEGER) {
            *effective = r->integer;
        } else {
            set_errstr(s, "%s", "unexpected reply to the revoke-all script");
            rc = -STORE_EUNAVAILABLE;
        }
    }
    freeReplyObject(r);
    return rc;
}

int store_probe(struct store *s, struct store_status *st)
{
    char key[STORE_KEY_SIZE];
    struct cmd cmds[2] = {{0}, {0}};
    redisReply *r[2] = {NULL, NULL};
    int rc = -STORE_EUNAVAILABLE;

    snprintf(st->role, sizeof(st->role), "unknown");
    st->accepts_revocations = false;
    snprintf(st->address, sizeof(st->address), "%s", "");
    snprintf(key, sizeof(key), "%sreadyz", s->prefix);
    ARG(&cmds[0], "ROLE");
    /* A primary can still refuse writes (maxmemory, a failed disk, too few
     * replicas); only a real write proves it takes revocations. */
    ARG(&cmds[1], "SET");
    ARG(&cmds[1], key);
    ARG(&cmds[1], "1");
    ARG(&cmds[1], "PX");
    ARG(&cmds[1], "10000");
    if (exec(s, cmds, 2, r) < 0) {
        struct conn *c = conn_of(s);
        if (c != NULL)
            snprintf(st->address, sizeof(st->address), "%s", c->address);
        return -STORE_EUNAVAILABLE;
    }
    snprintf(st->address, sizeof(st->address), "%s", conn_of(s)->address);
    if (r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements > 0 &&
        r[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(st->role, sizeof(st->role), "%s",
                 strcmp(r[0]->element[0]->str, "slave") == 0 ? "replica" : r[0]->element[0]->str);
    st->accepts_revocations = r[1]->type != REDIS_REPLY_ERROR;
    if (strcmp(st->role, "master") != 0)
        set_errstr(s, "Redis is a %s, not a primary", st->role);
    else if (!st->accepts_revocations && strncmp(r[1]->str, "NOREPLICAS", 10) != 0)
        set_errstr(s, "Redis refuses writes: %.100s", r[1]->str);
    else
        rc = 0; /* NOREPLICAS: see store.h */
    free_replies(r, 2);
    return rc;
}

const char *store_errstr(struct store *s)
{
    struct conn *c = conn_of(s);
    return c != NULL && c->errstr[0] != '\0' ? c->errstr : "unknown store error";
}

/* ---- Sentinel watcher ---- */

/* Subscribes to +switch-master on one Sentinel. Returns the context or NULL. */
static redisContext *subscribe(struct store *s, const struct endpoint *sentinel)
{
    redisContext *ctx = connect_tcp(sentinel, s->timeout_ms);
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
static void on_notice(struct store *s, const redisReply *m)
{
    char name[128], oldip[HOST_MAX], newip[HOST_MAX];
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
    struct store *s = arg;
    redisContext *sub = NULL;
    int next = 0;
    int64_t confirm_at = 0;

    while (!atomic_load(&s->stopping)) {
        if (sub == NULL) {
            sub = subscribe(s, &s->sentinels[next]);
            next = (next + 1) % s->nsentinels;
        }
        if (now_ms() >= confirm_at) {
            if (sentinel_confirm(s) < 0)
                log_msg(LOG_WARN, "store_unconfirmed",
                        "no majority of Sentinels names a primary for \"%s\"", s->master);
            confirm_at = now_ms() + s->role_check_ms;
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

int store_start(struct store *s)
{
    if (!sentinel_mode(s))
        return 0;
    if (pthread_create(&s->watcher, NULL, watch_sentinels, s) != 0)
        return -1;
    s->watcher_started = true;
    return 0;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    if (s->watcher_started)
        pthread_join(s->watcher, NULL);
    conn_destroy(pthread_getspecific(s->tls));
    pthread_setspecific(s->tls, NULL);
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->lock);
    free(s->prefix);
    free(s->unix_path);
    free(s->username);
    free(s->password);
    free(s->master);
    free(s);
}
