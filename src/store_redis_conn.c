/* store_redis_conn.c - a worker's connections to Redis, pipelined on its
 * loop.
 *
 * Calls append their commands to a hiredis async context; everything queued
 * goes out in one write before the loop sleeps (the connection's hook), so
 * concurrent requests share round trips, and the replies resume the
 * requests as they come. A call that fails at once (no usable connection)
 * is answered in the next round, from the same hook, never inside the call
 * that made it.
 *
 * Each worker has two links: reads (the checks' MGET, the log's XRANGE) and
 * writes (EVAL, WAIT, the readiness probe). WAIT holds its connection until
 * the replicas confirm, up to the replication timeout; on a link of their
 * own, checks never queue behind it.
 *
 * A read of the revocation log that finds nothing and may wait is parked:
 * it holds no command on the link, and the connection's hook reads again
 * every STORE_LOG_POLL_MS until an entry comes or its wait ends. XREAD BLOCK
 * would be simpler and sooner, but it holds the connection it is sent on:
 * every check pipelined behind it on the worker's link would wait as long
 * as it does, and a connection of its own per waiting reader would cost a
 * Redis connection and a descriptor on both sides for every idle poller.
 * An empty XRANGE is one seek in the stream; ten a second per waiting
 * reader is cheap, and an entry is seen at most STORE_LOG_POLL_MS late.
 * The one reader that follows the log for a node's event streams
 * (event_stream.c) has a connection of its own: its reads block (XREAD
 * BLOCK, its deadline the wait plus the usual timeout), and it sees an
 * entry as soon as it is written.
 *
 * hiredis 0.14 has no timeout for async commands, so each link keeps the
 * deadlines of its commands in send order (Redis answers in that order);
 * when the oldest passes, the link is closed, which answers every command on
 * it as unavailable. A new connection is opened on the next call, at most
 * every RECONNECT_BACKOFF_MS.
 *
 * These deadlines are the bound on a request's wait for Redis: a check's
 * MGET is answered, or failed, within REVOKD_REDIS_TIMEOUT_MS of being
 * queued (a write's WAIT gets REVOKD_REPLICATION_TIMEOUT_MS more), so no
 * deadline of the request's own is needed. They do not bound how many wait:
 * a slow or frozen Redis would gather every request of a busy worker
 * meanwhile. A link therefore takes a new call only while fewer than
 * REVOKD_STORE_MAX_PENDING commands wait on it: any other is refused at once
 * (-STORE_EOVERLOADED, answered in the next round like every call that fails
 * at once), counted and logged. Load is shed, not queued, and the link takes
 * calls again as soon as its replies (or its timeout) empty it. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "revokd/log.h"
#include "revokd/loop.h"
#include "revokd/metrics.h"
#include "revokd/store_key.h"
#include "store_redis_adapter.h"
#include "store_redis_internal.h"

/* After a failed connection, calls fail at once for this long rather than
 * each trying to connect. */
#define RECONNECT_BACKOFF_MS 100
#define ERR_MAX 160
/* The log's key: <prefix>log. */
#define LOG_KEY_SIZE (STORE_KEY_PREFIX_MAX + 4)

struct conn;

struct sent {
    int64_t deadline_ms;
    int64_t at_ns;
};

/* One connection, reopened as needed. */
struct link {
    struct conn *conn;
    const char *name; /* "reads" or "writes", for errors */
    redisAsyncContext *ac; /* NULL while closed */
    unsigned generation;
    int64_t retry_after_ms, role_checked_ms;
    /* Commands in flight, oldest first (a ring). */
    struct sent *sent;
    size_t cap, head, count;
    char address[300];
    char error[ERR_MAX];
};

struct call;

/* A worker's connection to the store. */
struct conn {
    struct store_conn base; /* first: the interface's handle */
    struct store_redis *s;
    struct loop *loop;
    struct loop_hook hook;   /* before the loop sleeps: answers, timeouts, writes */
    struct loop_timer timer; /* wakes the loop for the next timeout or ROLE check */
    struct store_redis_adapter *adapter;
    struct link reads, writes;
    struct call *failed;    /* answered at once, delivered in the next round */
    unsigned shed;          /* calls refused for a full link since the last log line */
    int64_t shed_logged_ms; /* when that line was written */
    struct call *parked;    /* reads of the log waiting for an entry, none in flight */
    struct call *spare;     /* finished calls, reused */
};

enum call_kind { CALL_LOOKUP, CALL_WRITE, CALL_WAIT, CALL_PROBE, CALL_LOG };

/* One store call: one or more commands, one answer. */
struct call {
    struct conn *conn;
    struct link *link;
    enum call_kind kind;
    int pending;   /* replies still to come */
    int replies;   /* replies come so far */
    bool has_sub, revoke_all;
    int64_t iat;
    store_done done;
    void *arg;
    struct store_result res;
    char error[ERR_MAX];
    /* CALL_LOG: where to read from, how much, until when to wait (a read
     * that found nothing parks until next_ms), and what it found. */
    char after[STORE_EVENT_ID_MAX];
    int limit;
    bool park, block;
    int64_t deadline_ms, next_ms;
    struct store_event *events;
    struct call *next; /* on the connection's failed, parked or spare list */
};

/* ---- links ---- */

static void link_lost(struct link *l, const char *why)
{
    if (why != NULL)
        snprintf(l->error, sizeof(l->error), "%s: %.140s", l->name, why);
    l->ac = NULL;
    l->count = 0;
    l->retry_after_ms = loop_now_ms() + RECONNECT_BACKOFF_MS;
    atomic_store(&l->conn->s->up, false);
}

/* Closes the link; hiredis then answers its commands with NULL replies. */
static void link_close(struct link *l, const char *why)
{
    redisAsyncContext *ac = l->ac;
    if (ac == NULL)
        return;
    link_lost(l, why);
    redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    if (status != REDIS_OK && l->ac == ac)
        link_lost(l, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    if (l->ac == ac)
        link_lost(l, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static int64_t sent_pop(struct link *l, redisAsyncContext *ac)
{
    if (ac != l->ac || l->count == 0)
        return 0; /* a reply (or NULL) from a context already closed */
    int64_t at = l->sent[l->head].at_ns;
    l->head = (l->head + 1) % l->cap;
    l->count--;
    return at;
}

static int sent_push(struct link *l, int timeout_ms)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct sent *n = malloc(cap * sizeof(*n));
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < l->count; i++)
            n[i] = l->sent[(l->head + i) % l->cap];
        free(l->sent);
        l->sent = n;
        l->cap = cap;
        l->head = 0;
    }
    int64_t now = loop_now_ns();
    l->sent[(l->head + l->count) % l->cap] = (struct sent){now / 1000000 + timeout_ms, now};
    l->count++;
    return 0;
}

static int send_argv(struct link *l, redisCallbackFn *fn, void *privdata, int argc,
                     const char **argv, const size_t *len, int timeout_ms)
{
    if (sent_push(l, timeout_ms) < 0)
        return -1;
    if (redisAsyncCommandArgv(l->ac, fn, privdata, argc, argv, len) != REDIS_OK) {
        l->count--;
        return -1;
    }
    return 0;
}

static bool is_master(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
           r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
}

/* Replies to the commands a link sends for itself: AUTH, SELECT, ROLE. */
static void on_own_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct link *l = privdata;
    redisReply *r = reply;

    sent_pop(l, ac);
    if (r == NULL || ac != l->ac)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        link_close(l, r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && !is_master(r)) {
        /* Sentinel may still name a demoted primary, or not yet name the
         * new one: a link is used only while the server agrees. */
        unsigned gen = l->generation;
        link_close(l, "Redis at this address is not the primary");
        store_redis_primary_forget(l->conn->s, gen);
    }
}

static int send_own(struct link *l, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t len[3] = {strlen(a0), a1 ? strlen(a1) : 0, a2 ? strlen(a2) : 0};
    int argc = a2 ? 3 : a1 ? 2 : 1;
    return send_argv(l, on_own_reply, l, argc, argv, len, l->conn->s->timeout_ms);
}

/* Opens the link to the current primary. Commands may be queued at once:
 * hiredis sends them when the connection is up, and since Redis answers in
 * order, any command queued behind ROLE runs only on a server that ROLE
 * then confirms (a failed ROLE closes the link and fails them). */
static int link_open(struct link *l)
{
    struct store_redis *s = l->conn->s;
    struct config_endpoint ep = s->redis->endpoint;
    unsigned gen = 0;
    redisAsyncContext *ac;
    char db[16];

    if (loop_now_ms() < l->retry_after_ms)
        return -1; /* l->error still says why the last attempt failed */
    if (store_redis_sentinel_mode(s) && !store_redis_primary(s, &ep, &gen)) {
        snprintf(l->error, sizeof(l->error), "no primary confirmed by a majority of Sentinels for \"%.60s\"",
                 s->master);
        return -1;
    }
    if (s->redis->unix_path != NULL) {
        ac = redisAsyncConnectUnix(s->redis->unix_path);
        snprintf(l->address, sizeof(l->address), "%s", s->redis->unix_path);
    } else {
        ac = s->source != NULL ? redisAsyncConnectBind(ep.host, ep.port, s->source)
                               : redisAsyncConnect(ep.host, ep.port);
        snprintf(l->address, sizeof(l->address), "%s:%d", ep.host, ep.port);
    }
    if (ac == NULL || ac->err != 0 || store_redis_adapter_attach(l->conn->adapter, ac) < 0) {
        snprintf(l->error, sizeof(l->error), "%s: connect: %.120s", l->name,
                 ac && ac->err ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        l->retry_after_ms = loop_now_ms() + RECONNECT_BACKOFF_MS;
        return -1;
    }
    store_redis_bound_reader(ac->c.reader);
    ac->data = l;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->generation = gen;
    l->count = 0;
    l->error[0] = '\0';
    l->role_checked_ms = loop_now_ms();

    const struct config_redis *r = s->redis;
    snprintf(db, sizeof(db), "%d", r->db);
    if ((r->password != NULL && (r->username ? send_own(l, "AUTH", r->username, r->password)
                                             : send_own(l, "AUTH", r->password, NULL)) < 0) ||
        (r->db != 0 && send_own(l, "SELECT", db, NULL) < 0) ||
        (store_redis_sentinel_mode(s) && send_own(l, "ROLE", NULL, NULL) < 0)) {
        link_close(l, "out of memory");
        return -1;
    }
    return 0;
}

/* The link, opened if needed; NULL (with l->error set) when unusable. */
static struct link *link_ready(struct link *l)
{
    struct store_redis *s = l->conn->s;
    if (store_redis_sentinel_mode(s) && !store_redis_confirmed(s)) {
        snprintf(l->error, sizeof(l->error), "the Sentinels no longer confirm the primary");
        return NULL;
    }
    if (l->ac == NULL && link_open(l) < 0)
        return NULL;
    return l;
}

/* ---- calls ---- */

static struct call *call_new(struct conn *c, struct link *l, enum call_kind kind,
                             store_done done, void *arg)
{
    struct call *call = c->spare;
    if (call != NULL)
        c->spare = call->next;
    else if ((call = malloc(sizeof(*call))) == NULL)
        abort(); /* as hiredis does: a call cannot be answered without one */
    call->conn = c;
    call->link = l;
    call->kind = kind;
    call->pending = call->replies = 0;
    call->has_sub = call->revoke_all = call->park = call->block = false;
    call->events = NULL;
    call->done = done;
    call->arg = arg;
    call->error[0] = '\0';
    memset(&call->res, 0, sizeof(call->res));
    return call;
}

static void call_finish(struct call *call)
{
    struct conn *c = call->conn;
    if (call->res.rc < 0)
        call->res.error = call->error[0] ? call->error : "unknown store error";
    call->done(call->arg, &call->res);
    free(call->events); /* the result's, valid only during done */
    call->events = NULL;
    call->next = c->spare;
    c->spare = call;
}

__attribute__((format(printf, 3, 4))) static void call_error(struct call *call, int rc,
                                                             const char *fmt, ...)
{
    va_list ap;
    if (call->res.rc < 0)
        return; /* the first failure is the one to report */
    call->res.rc = rc;
    va_start(ap, fmt);
    vsnprintf(call->error, sizeof(call->error), fmt, ap);
    va_end(ap);
}

static void on_call_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends one command of call on its link. Returns 0, or -1 with the call's
 * error set; the caller answers the call if no reply is pending. */
static int call_send(struct call *call, int argc, const char **argv, const size_t *len, int timeout_ms)
{
    struct link *l = link_ready(call->link);
    if (l == NULL || send_argv(l, on_call_reply, call, argc, argv, len, timeout_ms) < 0) {
        metrics_redis(0, false);
        call_error(call, -STORE_EUNAVAILABLE, "%s", l ? "out of memory" : call->link->error);
        return -1;
    }
    call->pending++;
    return 0;
}

/* A call that failed before any command went out: answered in the next
 * round (the connection's hook), never inside the call that made it. */
static void call_fail_later(struct call *call)
{
    call->next = call->conn->failed;
    call->conn->failed = call;
}

/* Answers the calls that failed so far; those failing meanwhile, from a
 * continuation, wait for the next time. */
static void answer_failed(struct conn *c)
{
    struct call *failed = c->failed;

    c->failed = NULL;
    while (failed != NULL) {
        struct call *call = failed;
        failed = call->next;
        call_finish(call);
    }
}

/* A call refused because its link is full: counted every time, logged at
 * most once a second per worker (as http_conn.c does its limits), so a flood
 * of refusals does not become a flood of log lines. */
static void call_overloaded(struct call *call)
{
    struct conn *c = call->conn;
    struct link *l = call->link;
    int64_t now = loop_now_ms();

    metrics_limit(METRICS_LIMIT_STORE_PENDING);
    call_error(call, -STORE_EOVERLOADED, "%s: %zu Redis commands already waiting (REVOKD_STORE_MAX_PENDING)",
               l->name, l->count);
    c->shed++;
    if (now - c->shed_logged_ms < 1000 || !log_enabled(LOG_WARN))
        return;
    c->shed_logged_ms = now;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "limit", "REVOKD_STORE_MAX_PENDING");
    cJSON_AddStringToObject(f, "link", l->name);
    cJSON_AddNumberToObject(f, "waiting", (double)l->count);
    cJSON_AddNumberToObject(f, "refused", c->shed); /* since the last line, this one's included */
    c->shed = 0;
    log_event(LOG_WARN, "store_overloaded", f);
}

/* call_send for a call's first command, unless its link is full (see the
 * top of this file). The readiness probe does not come here: it asks
 * whether the store works, and refusing it for this node's load would take
 * the node out of its load balancer's pool and push the load onto the
 * others. */
static void call_send_first(struct call *call, int argc, const char **argv, const size_t *len)
{
    if (call->link->count >= (size_t)call->conn->s->max_pending) {
        call_overloaded(call);
        call_fail_later(call);
    } else if (call_send(call, argc, argv, len, call->conn->s->timeout_ms) < 0) {
        call_fail_later(call);
    }
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

static void lookup_result(struct call *call, const redisReply *r)
{
    size_t want = call->has_sub ? 2 : 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != want) {
        call_error(call, -STORE_EUNAVAILABLE, "unexpected reply to MGET");
        return;
    }
    call->res.revoked = r->element[0]->type != REDIS_REPLY_NIL;
    if (call->has_sub && r->element[1]->type != REDIS_REPLY_NIL) {
        int64_t cutoff;
        /* A record we cannot read is not proof of innocence. */
        if (r->element[1]->type != REDIS_REPLY_STRING || parse_i64(r->element[1]->str, &cutoff) < 0) {
            call_error(call, -STORE_EUNAVAILABLE, "unreadable revoke-all record");
            return;
        }
        call->res.revoked = call->res.revoked || call->iat <= cutoff;
    }
}

/* A write succeeded on the primary; when replicas are required, WAIT on
 * the same link (WAIT counts only this connection's writes). WAIT is sent
 * only now: pipelined behind a refused write (NOREPLICAS) it would hold the
 * link for the whole replication timeout. */
static void write_result(struct call *call, const redisReply *r)
{
    struct store_redis *s = call->conn->s;
    char n[16], ms[16];

    if (call->revoke_all) {
        if (r->type != REDIS_REPLY_INTEGER) {
            call_error(call, -STORE_EUNAVAILABLE, "unexpected reply to the revoke-all script");
            return;
        }
        call->res.cutoff = r->integer;
    }
    if (s->min_replicas == 0)
        return;
    snprintf(n, sizeof(n), "%d", s->min_replicas);
    snprintf(ms, sizeof(ms), "%d", s->replication_timeout_ms);
    const char *argv[3] = {"WAIT", n, ms};
    size_t len[3] = {4, strlen(n), strlen(ms)};
    call->kind = CALL_WAIT;
    call_send(call, 3, argv, len, s->timeout_ms + s->replication_timeout_ms);
}

static void wait_result(struct call *call, const redisReply *r)
{
    struct store_redis *s = call->conn->s;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < s->min_replicas)
        /* The write is applied on the primary; only its durability is
         * unknown. The caller retries (revocations are idempotent). */
        call_error(call, -STORE_ENOTREPLICATED,
                   "WAIT: fewer than %d replicas confirmed the write in %d ms", s->min_replicas,
                   s->replication_timeout_ms);
}

/* The probe's ROLE, its SET, then its SET of the data-loss marker. */
static void probe_result(struct call *call, const redisReply *r)
{
    struct store_status *st = &call->res.status;
    if (call->replies == 1) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING)
            snprintf(st->role, sizeof(st->role), "%s",
                     strcmp(r->element[0]->str, "slave") == 0 ? "replica" : r->element[0]->str);
        return;
    }
    if (call->replies == 2) {
        st->accepts_revocations = r->type != REDIS_REPLY_ERROR;
        if (strcmp(st->role, "master") != 0)
            call_error(call, -STORE_EUNAVAILABLE, "Redis is a %s, not a primary", st->role);
        else if (!st->accepts_revocations && strncmp(r->str, "NOREPLICAS", 10) != 0)
            call_error(call, -STORE_EUNAVAILABLE, "Redis refuses writes: %.100s", r->str);
        /* NOREPLICAS: ready, without revocations; see store.h */
        return;
    }
    /* The marker: nil when it is missing (before this node adopted one,
     * the probe's SET NX made it this node's candidate), else the one
     * found. A primary refusing writes (or one found wrong above) says
     * nothing about it. */
    if (call->res.rc < 0 || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING))
        return;
    if (!store_redis_epoch_holds(call->conn->s, r->type == REDIS_REPLY_STRING ? r->str : NULL)) {
        st->data_lost = true;
        call_error(call, -STORE_EDATALOST,
                   "Redis lost its data since this node started: revocations made before are gone");
    }
}

/* One entry of an XRANGE reply, [id, [field, value, ...]], into e; its
 * strings point into r. Fields revokd does not know are skipped, so that a
 * later version may add some. Returns 0, or -1 when the entry is not one
 * revokd wrote: a revocation that cannot be read must not be passed over.
 * The id, like every value, is whole text: one holding a NUL would be read
 * as a shorter one (or none), which is no place to read after. */
static int parse_event(const redisReply *r, struct store_event *e)
{
    const char *kind = NULL, *exp = NULL, *cutoff = NULL, *at = NULL;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= sizeof(e->id) ||
        strlen(r->element[0]->str) != r->element[0]->len || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->elements % 2 != 0)
        return -1;
    memcpy(e->id, r->element[0]->str, r->element[0]->len + 1);
    const redisReply *f = r->element[1];
    for (size_t i = 0; i < f->elements; i += 2) {
        const redisReply *name = f->element[i], *value = f->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING ||
            value->len >= STORE_BY_MAX || strlen(value->str) != value->len)
            return -1;
        static const char *const names[] = {"kind", "iss", "jti", "sub", "exp", "cutoff", "reason", "by", "at"};
        const char **slots[] = {&kind, &e->iss, &e->jti, &e->sub, &exp, &cutoff, &e->reason, &e->by, &at};
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
            if (strcmp(name->str, names[n]) == 0)
                *slots[n] = value->str;
    }
    if (kind == NULL || e->iss == NULL || e->by == NULL || exp == NULL || at == NULL ||
        parse_i64(exp, &e->exp) < 0 || parse_i64(at, &e->at) < 0)
        return -1;
    if (strcmp(kind, "jti") == 0 && e->jti != NULL && e->sub == NULL && cutoff == NULL) {
        e->kind = STORE_EVENT_JTI;
        return 0;
    }
    if (strcmp(kind, "subject") == 0 && e->sub != NULL && e->jti == NULL && cutoff != NULL &&
        parse_i64(cutoff, &e->cutoff) == 0) {
        e->kind = STORE_EVENT_SUBJECT;
        return 0;
    }
    return -1;
}

/* The log's entries after call->after, or none: then, with time left to
 * wait, the call parks (see the top of this file). XREAD's reply (a
 * blocking read) holds XRANGE's inside [[key, entries]], or is nil when its
 * wait ran out. */
static void log_result(struct call *call, const redisReply *r)
{
    if (call->block && r->type == REDIS_REPLY_NIL)
        return;
    if (call->block && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        r = r->element[0]->element[1];
    else if (call->block)
        r = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements > (size_t)call->limit) {
        call_error(call, -STORE_EUNAVAILABLE, "unexpected reply to %s", call->block ? "XREAD" : "XRANGE");
        return;
    }
    if (r->elements == 0) {
        call->park = !call->block && loop_now_ms() < call->deadline_ms;
        return;
    }
    if ((call->events = calloc(r->elements, sizeof(*call->events))) == NULL) {
        call_error(call, -STORE_EUNAVAILABLE, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (parse_event(r->element[i], &call->events[i]) < 0) {
            call_error(call, -STORE_EUNAVAILABLE, "the revocation log holds an entry revokd cannot read, after %s",
                       i > 0 ? call->events[i - 1].id : call->after);
            return;
        }
    call->res.events = call->events;
    call->res.n_events = r->elements;
}

static void park(struct call *call)
{
    struct conn *c = call->conn;

    call->park = false;
    call->next_ms = loop_now_ms() + STORE_LOG_POLL_MS;
    call->next = c->parked;
    c->parked = call;
}

static void on_call_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct call *call = privdata;
    struct link *l = call->link;
    redisReply *r = reply;
    int64_t at = sent_pop(l, ac);

    metrics_redis(at ? (double)(loop_now_ns() - at) / 1e9 : 0,
                  r != NULL && r->type != REDIS_REPLY_ERROR);
    call->pending--;
    call->replies++;
    if (r == NULL) {
        /* l->error already names the link. */
        if (ac->err != 0 || l->error[0] == '\0')
            call_error(call, -STORE_EUNAVAILABLE, "%s: %s", l->name,
                       ac->err != 0 ? ac->errstr : "connection lost");
        else
            call_error(call, -STORE_EUNAVAILABLE, "%s", l->error);
    } else if (!atomic_load(&call->conn->s->up)) {
        atomic_store(&call->conn->s->up, true);
    }
    if (r != NULL && call->res.rc == 0) {
        if (r->type == REDIS_REPLY_ERROR && call->kind != CALL_PROBE) {
            if (strncmp(r->str, "READONLY", 8) == 0) {
                unsigned gen = l->generation;
                link_close(l, "READONLY: the server is no longer the primary");
                store_redis_primary_forget(call->conn->s, gen);
            }
            /* NOREPLICAS: the primary refused the write for want of
             * replicas, which the API reports as not replicated. */
            call_error(call,
                       strncmp(r->str, "NOREPLICAS", 10) == 0 ? -STORE_ENOTREPLICATED
                                                               : -STORE_EUNAVAILABLE,
                       "%.120s", r->str);
        } else if (call->kind == CALL_LOOKUP) {
            lookup_result(call, r);
        } else if (call->kind == CALL_WRITE) {
            write_result(call, r);
        } else if (call->kind == CALL_WAIT) {
            wait_result(call, r);
        } else if (call->kind == CALL_LOG) {
            log_result(call, r);
        } else {
            probe_result(call, r);
        }
    }
    if (call->pending == 0 && call->park)
        park(call);
    else if (call->pending == 0)
        call_finish(call);
}

static void is_revoked(struct conn *c, const struct store_call *q, store_done done, void *arg)
{
    char jkey[STORE_KEY_SIZE], skey[STORE_KEY_SIZE];
    const char *argv[3] = {"MGET", jkey, skey};
    size_t len[3] = {4, store_key(jkey, c->s->prefix, STORE_KEY_JTI, q->iss, q->jti), 0};
    struct call *call = call_new(c, &c->reads, CALL_LOOKUP, done, arg);

    call->has_sub = q->sub != NULL;
    call->iat = q->iat;
    if (q->sub != NULL)
        len[2] = store_key(skey, c->s->prefix, STORE_KEY_SUB, q->iss, q->sub);
    call_send_first(call, q->sub != NULL ? 3 : 2, argv, len);
}

/* Both revocation scripts end here, once their record changed: the entry,
 * begun in the table f, gets the reason (ARGV[6], '' for none), who did it
 * (ARGV[7]) and when (t, the server's TIME, in ms), and is appended to the
 * log (KEYS[2]) in the same script, so the record and its entry are written
 * together or not at all, and the WAIT after the script covers both. The
 * append drops the entries older than the retention (ARGV[3] ms; 0 keeps
 * all): with '~', only whole stream nodes (stream-node-max-entries, 100 by
 * default) whose every entry is that old, which costs nothing between node
 * boundaries; an older entry left in a node with younger ones has an exp
 * already past, which a reader of the log skips anyway. */
#define LOG_APPEND                                                                       \
    "if ARGV[6] ~= '' then f[#f + 1] = 'reason'; f[#f + 1] = ARGV[6] end\n"             \
    "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"            \
    "f[#f + 1] = 'by'; f[#f + 1] = ARGV[7]\n"                                           \
    "f[#f + 1] = 'at'; f[#f + 1] = string.format('%d', ms)\n"                           \
    "local minid = 0\n"                                                                 \
    "if tonumber(ARGV[3]) > 0 then minid = math.max(0, ms - tonumber(ARGV[3])) end\n"   \
    "redis.call('XADD', KEYS[2], 'MINID', '~', string.format('%d', minid), '*', unpack(f))\n"

/* Stores the jti record (KEYS[1]) with value ARGV[1] until ARGV[2] (unix
 * seconds), unless one already lasts as long: then nothing changes and
 * nothing is logged, so a retried revocation appends no second entry, and a
 * revocation is never shortened. Returns 1 when it stored, else 0. */
static const char revoke_jti_script[] =
    "local old = redis.call('EXPIRETIME', KEYS[1])\n"
    "if old == -1 or old >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local f = {'kind', 'jti', 'iss', ARGV[4], 'jti', ARGV[5], 'exp', ARGV[2]}\n"
    LOG_APPEND
    "return 1\n";

/* Moves the cutoff (KEYS[1]) forward to ARGV[1] only, keeping the record
 * ARGV[2] seconds, atomically; an unchanged cutoff logs nothing. Returns
 * the cutoff in force. */
static const char revoke_all_script[] =
    "local old = tonumber(redis.call('GET', KEYS[1]))\n"
    "local new = tonumber(ARGV[1])\n"
    "if old ~= nil and old >= new then return old end\n"
    "local t = redis.call('TIME')\n"
    "local exat = string.format('%d', tonumber(t[1]) + tonumber(ARGV[2]))\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EXAT', exat)\n"
    "local f = {'kind', 'subject', 'iss', ARGV[4], 'sub', ARGV[5], 'cutoff', ARGV[1], 'exp', exat}\n"
    LOG_APPEND
    "return new\n";

static size_t log_key(char *out, const struct conn *c)
{
    return (size_t)snprintf(out, LOG_KEY_SIZE, "%slog", c->s->prefix);
}

/* EVAL of script over the record key and the log with the arguments
 * ARGV[1..3] given, then the namespace, id, reason and who (see the
 * scripts), on the writes link. */
static void revoke_eval(struct conn *c, struct call *call, const char *script, size_t script_len,
                        const struct store_call *q, const char *key, size_t keylen, const char *id,
                        const char *a1, const char *a2, const char *a3)
{
    char log[LOG_KEY_SIZE];
    const char *reason = q->reason != NULL ? q->reason : "", *by = q->by != NULL ? q->by : "";
    const char *argv[12] = {"EVAL", script, "2", key, log, a1, a2, a3, q->iss, id, reason, by};
    size_t len[12] = {4, script_len, 1, keylen, log_key(log, c), strlen(a1), strlen(a2), strlen(a3),
                      strlen(q->iss), strlen(id), strlen(reason), strlen(by)};

    call_send_first(call, 12, argv, len);
}

static void revoke_jti(struct conn *c, const struct store_call *q, store_done done, void *arg)
{
    char key[STORE_KEY_SIZE], at[24], keep[24];
    const char *value = q->reason != NULL && q->reason[0] != '\0' ? q->reason : "1";
    size_t keylen = store_key(key, c->s->prefix, STORE_KEY_JTI, q->iss, q->jti);

    /* The record lives exactly as long as the token could be accepted
     * (exp + leeway): after that the signature check alone refuses it. */
    snprintf(at, sizeof(at), "%" PRId64, q->expires_at);
    snprintf(keep, sizeof(keep), "%" PRId64, q->retention_ms);
    revoke_eval(c, call_new(c, &c->writes, CALL_WRITE, done, arg), revoke_jti_script,
                sizeof(revoke_jti_script) - 1, q, key, keylen, q->jti, value, at, keep);
}

static void revoke_all(struct conn *c, const struct store_call *q, store_done done, void *arg)
{
    char key[STORE_KEY_SIZE], cut[24], t[24], keep[24];
    size_t keylen = store_key(key, c->s->prefix, STORE_KEY_SUB, q->iss, q->sub);
    struct call *call = call_new(c, &c->writes, CALL_WRITE, done, arg);

    snprintf(cut, sizeof(cut), "%" PRId64, q->cutoff);
    snprintf(t, sizeof(t), "%" PRId64, q->ttl);
    snprintf(keep, sizeof(keep), "%" PRId64, q->retention_ms);
    call->revoke_all = true;
    revoke_eval(c, call, revoke_all_script, sizeof(revoke_all_script) - 1, q, key, keylen, q->sub, cut, t, keep);
}

/* XRANGE <prefix>log (after + COUNT limit, on the reads link: the first
 * read as any call (refused when the link is full), a parked one's again
 * as part of that call. Returns -1 when it could not be sent (the call's
 * error set). */
static int log_read(struct call *call, bool first)
{
    char key[LOG_KEY_SIZE], start[STORE_EVENT_ID_MAX + 1], count[16];
    const char *argv[6] = {"XRANGE", key, start, "+", "COUNT", count};
    size_t len[6] = {6, log_key(key, call->conn), (size_t)snprintf(start, sizeof(start), "(%s", call->after), 1, 5,
                     (size_t)snprintf(count, sizeof(count), "%d", call->limit)};

    if (first) {
        call_send_first(call, 6, argv, len);
        return 0;
    }
    return call_send(call, 6, argv, len, call->conn->s->timeout_ms);
}

/* XREAD COUNT limit BLOCK wait STREAMS <prefix>log after: a read whose
 * connection is its caller's alone (store.h), given the wait beyond the
 * timeout of every command. */
static void log_read_blocking(struct call *call, int64_t wait_ms)
{
    char key[LOG_KEY_SIZE], count[16], ms[24];
    const char *argv[8] = {"XREAD", "COUNT", count, "BLOCK", ms, "STREAMS", key, call->after};
    size_t len[8] = {5, 5, (size_t)snprintf(count, sizeof(count), "%d", call->limit), 5,
                     (size_t)snprintf(ms, sizeof(ms), "%" PRId64, wait_ms), 7, log_key(key, call->conn),
                     strlen(call->after)};

    if (call_send(call, 8, argv, len, call->conn->s->timeout_ms + (int)wait_ms) < 0)
        call_fail_later(call);
}

static void read_log(struct conn *c, const struct store_call *q, store_done done, void *arg)
{
    struct call *call = call_new(c, &c->reads, CALL_LOG, done, arg);

    snprintf(call->after, sizeof(call->after), "%s", q->after);
    call->limit = q->limit;
    call->block = q->block && q->wait_ms > 0;
    call->deadline_ms = loop_now_ms() + q->wait_ms;
    if (call->block)
        log_read_blocking(call, q->wait_ms);
    else
        log_read(call, true);
}

/* Before the loop sleeps: each parked read whose wait is over is answered
 * with nothing; each due is read again, unless its link is full (then at
 * the next poll: a waiting reader never adds to an overload). *next_ms
 * becomes the time to the next of either, if sooner. */
static void wake_parked(struct conn *c, int64_t now, int64_t *next_ms)
{
    struct call *list = c->parked;

    c->parked = NULL;
    while (list != NULL) {
        struct call *call = list;
        list = call->next;
        if (now >= call->deadline_ms) {
            call_finish(call);
            continue;
        }
        if (now >= call->next_ms && call->link->count < (size_t)c->s->max_pending) {
            if (log_read(call, false) < 0)
                call_finish(call);
            continue;
        }
        if (now >= call->next_ms)
            call->next_ms = now + STORE_LOG_POLL_MS;
        call->next = c->parked;
        c->parked = call;
        int64_t due = call->next_ms < call->deadline_ms ? call->next_ms : call->deadline_ms;
        if (due - now < *next_ms)
            *next_ms = due - now;
    }
}

static void probe(struct conn *c, store_done done, void *arg)
{
    char key[STORE_KEY_PREFIX_MAX + 8], marker[STORE_KEY_PREFIX_MAX + 8];
    const char *role[1] = {"ROLE"};
    size_t rlen[1] = {4};
    const char *set[5] = {"SET", key, "1", "PX", "10000"};
    size_t slen[5] = {3, (size_t)snprintf(key, sizeof(key), "%sreadyz", c->s->prefix), 1, 2, 5};
    const char *mark[5] = {"SET", marker, c->s->candidate, "NX", "GET"};
    size_t mlen[5] = {3, (size_t)snprintf(marker, sizeof(marker), "%sepoch", c->s->prefix),
                      strlen(c->s->candidate), 2, 3};
    const char *get[2] = {"GET", marker};
    size_t glen[2] = {3, mlen[1]};
    bool adopted = atomic_load(&c->s->adopted);
    struct call *call = call_new(c, &c->writes, CALL_PROBE, done, arg);

    snprintf(call->res.status.role, sizeof(call->res.status.role), "unknown");
    snprintf(call->res.status.address, sizeof(call->res.status.address), "%s", c->writes.address);
    /* A primary can still refuse writes (maxmemory, a failed disk, too few
     * replicas); only a real write proves it takes revocations. */
    if (call_send(call, 1, role, rlen, c->s->timeout_ms) < 0) {
        call_fail_later(call);
        return;
    }
    /* The address is known once the link is open. */
    snprintf(call->res.status.address, sizeof(call->res.status.address), "%s", c->writes.address);
    /* On failure, the replies already due answer. */
    if (call_send(call, 5, set, slen, c->s->timeout_ms) == 0)
        call_send(call, adopted ? 2 : 5, adopted ? get : mark, adopted ? glen : mlen, c->s->timeout_ms);
}

void store_redis_conn_call(struct store_conn *base, const struct store_call *q, store_done done, void *arg)
{
    struct conn *c = (struct conn *)base;

    switch (q->op) {
    case STORE_IS_REVOKED:
        is_revoked(c, q, done, arg);
        break;
    case STORE_REVOKE_JTI:
        revoke_jti(c, q, done, arg);
        break;
    case STORE_REVOKE_ALL:
        revoke_all(c, q, done, arg);
        break;
    case STORE_PROBE:
        probe(c, done, arg);
        break;
    case STORE_READ_LOG:
        read_log(c, q, done, arg);
        break;
    case STORE_FORWARD: {
        /* Only an edge forwards (store_edge.c): a node over Redis stores. */
        struct call *call = call_new(c, &c->writes, CALL_WRITE, done, arg);
        call_error(call, -STORE_EUNAVAILABLE, "only an edge forwards revocations");
        call_fail_later(call);
        break;
    }
    }
}

/* ---- the worker's side ---- */

static void link_tick(struct link *l, int64_t now, int64_t *next_ms)
{
    struct store_redis *s = l->conn->s;

    if (l->ac == NULL)
        return;
    if (store_redis_sentinel_mode(s)) {
        if (l->generation != atomic_load(&s->generation)) {
            link_close(l, "the primary moved");
            return;
        }
        if (!store_redis_confirmed(s)) {
            link_close(l, "the Sentinels no longer confirm the primary");
            return;
        }
        /* A demoted primary keeps answering reads for seconds; writes
         * would get READONLY, reads must ask. */
        if (l == &l->conn->reads && now - l->role_checked_ms >= s->role_check_ms) {
            l->role_checked_ms = now;
            if (send_own(l, "ROLE", NULL, NULL) < 0)
                link_close(l, "out of memory");
        }
        if (l->ac != NULL && *next_ms > s->role_check_ms)
            *next_ms = s->role_check_ms;
    }
    if (l->ac != NULL && l->count > 0) {
        int64_t deadline = l->sent[l->head].deadline_ms;
        if (now >= deadline) {
            char why[64];
            snprintf(why, sizeof(why), "no reply within %d ms", s->timeout_ms);
            link_close(l, why);
        } else if (deadline - now < *next_ms) {
            *next_ms = deadline - now;
        }
    }
}

/* Before the loop sleeps: close the links whose oldest command is past its
 * deadline (answering their calls), read the log again for the parked
 * reads that are due, answer the calls that failed at once, send what the
 * round queued, and wake the loop for the next deadline, ROLE check or
 * parked read. */
static void before_sleep(struct loop_hook *h)
{
    struct conn *c = (struct conn *)((char *)h - offsetof(struct conn, hook));
    int64_t next_ms = 1000;
    int64_t now = loop_now_ms();

    link_tick(&c->reads, now, &next_ms);
    link_tick(&c->writes, now, &next_ms);
    wake_parked(c, now, &next_ms);
    answer_failed(c);
    if (c->failed != NULL)
        loop_wake(c->loop); /* failed again, from a continuation: the next round */
    store_redis_adapter_flush(c->adapter);
    loop_timer_arm(c->loop, &c->timer, next_ms);
}

static void on_timer(struct loop_timer *t)
{
    (void)t; /* it only woke the loop: before_sleep does the work */
}

struct store_conn *store_redis_conn_new(struct store *base, struct loop *loop)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->adapter = store_redis_adapter_new(loop)) == NULL) {
        free(c);
        return NULL;
    }
    c->base.store = base;
    c->s = (struct store_redis *)base;
    c->loop = loop;
    c->reads = (struct link){.conn = c, .name = "reads"};
    c->writes = (struct link){.conn = c, .name = "writes"};
    c->hook.before_sleep = before_sleep;
    c->timer.on_timer = on_timer;
    loop_hook_add(loop, &c->hook);
    return &c->base;
}

void store_redis_conn_free(struct store_conn *base)
{
    struct conn *c = (struct conn *)base;

    link_close(&c->reads, "shutting down");
    link_close(&c->writes, "shutting down");
    while (c->parked != NULL) {
        struct call *call = c->parked;
        c->parked = call->next;
        call_error(call, -STORE_EUNAVAILABLE, "shutting down");
        call_finish(call);
    }
    while (c->failed != NULL)
        answer_failed(c);
    loop_hook_remove(c->loop, &c->hook);
    loop_timer_disarm(c->loop, &c->timer);
    store_redis_adapter_free(c->adapter);
    free(c->reads.sent);
    free(c->writes.sent);
    while (c->spare != NULL) {
        struct call *call = c->spare;
        c->spare = call->next;
        free(call);
    }
    free(c);
}
