/* store_edge.c - an edge's store: central's revocations in memory, kept
 * current by the feed's thread, checks answered from them in the caller's
 * next round, revocations forwarded to central; see store_edge.h.
 *
 * A store of its own rather than the memory store extended: that one is
 * the handlers' test double, with its modes (hold, fail, refuse), its log,
 * and one lock for everything. What the two have in common is shared: the
 * table of records (store_set.c, which the memory store keeps its records
 * in too) and how an answer waits for the caller's next round (a list its
 * loop hook answers, as there). What the edge adds is its own: the feed,
 * whether it can vouch for what it holds, checks that share a read lock
 * while the feed's thread writes, and forwarding. */
#include "revokd/store_edge.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "revokd/log.h"
#include "revokd/loop.h"
#include "revokd/store_set.h"

/* Slots of the table swept for records past their time after each poll: a
 * table of 16M slots is gone over in 256 polls. Records past their time
 * are never reported meanwhile; sweeping only gives back their room. */
#define SWEEP_SLOTS 65536
/* A feed that keeps failing is logged again this often. */
#define FAIL_LOG_MS 30000

struct edge {
    struct store base; /* first: the interface's handle */
    struct store_edge_opts o;
    char *url, *admin_url, *key, *ca_file, *user_agent; /* the opts' strings, copied */
    char central[300];                       /* the feed's URL without /v1/events */
    struct edge_feed *feed;                  /* once started */

    pthread_rwlock_t set_lock; /* checks share it; only the feed's thread writes */
    struct store_set *set;

    atomic_bool replayed, behind, full;
    atomic_int_fast64_t heard_ms; /* loop_now_ms(); 0: never */
    int64_t started_ms;

    pthread_mutex_t lock;     /* last_id; forwards changing hands */
    char last_id[EDGE_FEED_ID_MAX];

    /* The feed's thread's alone: what was logged. */
    bool failing, stale_logged, full_logged, replay_logged;
    unsigned failures;
    int64_t fail_logged_ms;
};

/* A call between its making and its answer. */
struct pending {
    struct edge *e;
    struct conn *conn;  /* valid while the call is open (not orphan) */
    store_done done;
    void *arg;
    enum store_op op;
    unsigned char jti[STORE_KEY_DIGEST_BYTES], sub[STORE_KEY_DIGEST_BYTES];
    bool has_sub;
    int64_t iat;
    /* FORWARD: */
    bool orphan;  /* its connection went (and answered it) while central had it */
    struct store_result res;
    char *body;
    char retry_after[32], www_authenticate[320], error_code[64], error[256];
    struct pending *next;
};

struct conn {
    struct store_conn base;
    struct edge *e;
    struct loop *loop;
    struct loop_hook hook;
    struct loop_watch wake;  /* an eventfd: forwards answered on the feed's thread */
    struct pending *due;     /* the loop's: answered in the next round */
    /* Under e->lock: */
    struct pending *flying;  /* forwards central has */
    struct pending *arrived; /* forwards answered, for the loop to pass on */
    int nflying;
};

/* ---- how current the copy is ---- */

static int64_t lag_ms(struct edge *e, int64_t now)
{
    int64_t heard = atomic_load(&e->heard_ms);
    return now - (heard > 0 ? heard : e->started_ms);
}

/* 0 when the edge can vouch for what it holds at now (loop_now_ms()); else
 * -STORE_ESTALE with why. */
static int vouch(struct edge *e, int64_t now, const char **why)
{
    if (!atomic_load(&e->replayed))
        *why = "this edge has not read central's revocation feed to its end yet";
    else if (lag_ms(e, now) > e->o.max_staleness_ms)
        *why = "this edge has not heard from central within REVOKD_EDGE_MAX_STALENESS_MS";
    else if (atomic_load(&e->behind))
        *why = "central acknowledged a revocation through this edge that its feed has not brought back yet";
    else if (atomic_load(&e->full))
        *why = "this edge holds REVOKD_EDGE_MAX_REVOCATIONS revocations and cannot keep the next";
    else
        return 0;
    return -STORE_ESTALE;
}

/* ---- the feed's side ---- */

/* Room for one more record: a table twice the size, or the records past
 * their time swept out. Only this thread writes, so the table may be read
 * without the lock while its successor is built: checks go on meanwhile,
 * and wait only for the swap. */
static int room(struct edge *e, int64_t now)
{
    if (!store_set_full(e->set))
        return 0;
    struct store_set *g = store_set_grown(e->set, now);
    pthread_rwlock_wrlock(&e->set_lock);
    if (g != NULL)
        store_set_swap(e->set, g);
    else
        store_set_sweep(e->set, SIZE_MAX, now);
    bool full = store_set_full(e->set);
    pthread_rwlock_unlock(&e->set_lock);
    store_set_free(g);
    return full ? -1 : 0;
}

int store_edge_apply(struct store *s, const struct edge_feed_event *ev)
{
    struct edge *e = (struct edge *)s;
    unsigned char d[STORE_KEY_DIGEST_BYTES];
    int64_t leeway = 0, life = 0, now = (int64_t)time(NULL);
    int rc = -1;

    if (e->o.limits != NULL)
        e->o.limits(e->o.limits_arg, ev->iss, &leeway, &life);
    store_key_digest(d, ev->iss, ev->kind == EDGE_FEED_JTI ? ev->jti : ev->sub);
    /* Central ends a record when no token it covers can be accepted there;
     * this node keeps it its own leeway longer, in case it allows more
     * clock skew. A subject's record lasts at least as long as a token
     * issued at the cutoff can be accepted here. */
    int64_t until = ev->exp > 0 ? ev->exp + leeway : 0;
    if (ev->kind == EDGE_FEED_SUBJECT && until < ev->cutoff + life + leeway)
        until = ev->cutoff + life + leeway;
    for (int tries = 0; tries < 2 && rc < 0; tries++) {
        if (tries > 0 && room(e, now) < 0)
            break;
        pthread_rwlock_wrlock(&e->set_lock);
        rc = ev->kind == EDGE_FEED_JTI ? store_set_revoke_jti(e->set, d, until, now)
                                       : store_set_revoke_all(e->set, d, ev->cutoff, until, now, NULL);
        pthread_rwlock_unlock(&e->set_lock);
    }
    return rc < 0 ? -1 : 0;
}

static void log_progress(struct edge *e, const struct edge_feed_progress *p, int64_t now)
{
    bool ok = p->result == EDGE_FEED_events || p->result == EDGE_FEED_empty;

    if (p->polled && !ok) {
        e->failures++;
        if (!e->failing || now - e->fail_logged_ms >= FAIL_LOG_MS) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "result", edge_feed_result_name(p->result));
            if (p->status != 0)
                cJSON_AddNumberToObject(f, "status", (double)p->status);
            cJSON_AddStringToObject(f, "error", p->error != NULL ? p->error : "");
            cJSON_AddStringToObject(f, "feed", e->url);
            cJSON_AddNumberToObject(f, "failures", e->failures);
            cJSON_AddStringToObject(f, "last_id", p->last_id);
            log_event(p->result == EDGE_FEED_full ? LOG_ERROR : LOG_WARN, "edge_feed_failed", f);
            e->fail_logged_ms = now;
        }
        e->failing = true;
    } else if (p->polled && e->failing) {
        log_msg(LOG_INFO, "edge_feed_recovered", "central answers again, after %u failed polls; resumed after %s",
                e->failures, p->last_id);
        e->failing = false;
        e->failures = 0;
    }
    if (p->replayed && !e->replay_logged) {
        struct store_set_counts c;
        pthread_rwlock_rdlock(&e->set_lock);
        store_set_counts(e->set, &c);
        pthread_rwlock_unlock(&e->set_lock);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "revocations", (double)(c.jti + c.sub));
        cJSON_AddStringToObject(f, "last_id", p->last_id);
        cJSON_AddNumberToObject(f, "ms", (double)(now - e->started_ms));
        log_event(LOG_INFO, "edge_replayed", f);
        e->replay_logged = true;
    }
    bool stale = p->replayed && lag_ms(e, now) > e->o.max_staleness_ms;
    if (stale && !e->stale_logged)
        log_msg(LOG_WARN, "edge_stale",
                "nothing heard from central for %" PRId64 " ms: checks answer 503 feed_stale until it answers",
                lag_ms(e, now));
    else if (!stale && e->stale_logged)
        log_msg(LOG_INFO, "edge_current", "central heard from again; the feed is read up to %s", p->last_id);
    e->stale_logged = stale;
}

void store_edge_progress(struct store *s, const struct edge_feed_progress *p)
{
    struct edge *e = (struct edge *)s;
    int64_t now = loop_now_ms();

    pthread_mutex_lock(&e->lock);
    snprintf(e->last_id, sizeof(e->last_id), "%s", p->last_id);
    pthread_mutex_unlock(&e->lock);
    if (p->heard_ms > 0)
        atomic_store(&e->heard_ms, p->heard_ms);
    atomic_store(&e->behind, p->behind);
    if (p->polled)
        atomic_store(&e->full, p->result == EDGE_FEED_full);
    /* Set last: a check that finds the feed replayed finds it heard. */
    atomic_store(&e->replayed, p->replayed);
    if (p->polled) {
        pthread_rwlock_wrlock(&e->set_lock);
        store_set_sweep(e->set, SWEEP_SLOTS, (int64_t)time(NULL));
        pthread_rwlock_unlock(&e->set_lock);
    }
    log_progress(e, p, now);
}

static int feed_apply(void *arg, const struct edge_feed_event *ev)
{
    return store_edge_apply(arg, ev);
}

static void feed_progress(void *arg, const struct edge_feed_progress *p)
{
    store_edge_progress(arg, p);
}

/* ---- answers ---- */

/* The answer to p, made now on the caller's thread. */
static void answer(struct edge *e, struct pending *p, struct store_result *res)
{
    int64_t now_ms = loop_now_ms();
    const char *why = NULL;

    memset(res, 0, sizeof(*res));
    switch (p->op) {
    case STORE_IS_REVOKED:
        if ((res->rc = vouch(e, now_ms, &why)) < 0) {
            res->error = why;
            return;
        }
        pthread_rwlock_rdlock(&e->set_lock);
        res->revoked = store_set_is_revoked(e->set, p->jti, p->has_sub ? p->sub : NULL, p->iat, (int64_t)time(NULL));
        pthread_rwlock_unlock(&e->set_lock);
        return;
    case STORE_PROBE: {
        struct store_status *st = &res->status;
        struct store_set_counts c;
        snprintf(st->role, sizeof(st->role), "edge");
        snprintf(st->address, sizeof(st->address), "%s", e->central);
        st->accepts_revocations = true; /* forwarded: central's own readiness decides */
        st->edge = true;
        st->replayed = atomic_load(&e->replayed);
        st->lag_ms = lag_ms(e, now_ms);
        pthread_mutex_lock(&e->lock);
        snprintf(st->last_id, sizeof(st->last_id), "%s", e->last_id);
        pthread_mutex_unlock(&e->lock);
        pthread_rwlock_rdlock(&e->set_lock);
        store_set_counts(e->set, &c);
        pthread_rwlock_unlock(&e->set_lock);
        st->revocations = c.jti + c.sub;
        st->bytes = c.bytes;
        if ((res->rc = vouch(e, now_ms, &why)) < 0) {
            st->stale = true;
            res->error = why;
        }
        return;
    }
    case STORE_REVOKE_JTI:
    case STORE_REVOKE_ALL:
    case STORE_READ_LOG:
    case STORE_FORWARD:
        res->rc = -STORE_EUNAVAILABLE;
        res->error = "an edge keeps no revocation or log of its own: revocations are forwarded to central";
        return;
    }
}

static void before_sleep(struct loop_hook *h)
{
    struct conn *c = (struct conn *)((char *)h - offsetof(struct conn, hook));
    struct pending *due = c->due;

    c->due = NULL;
    while (due != NULL) {
        struct pending *p = due;
        struct store_result res;
        due = p->next;
        if (p->res.rc < 0)
            res = p->res; /* refused when made */
        else
            answer(c->e, p, &res);
        p->done(p->arg, &res);
        free(p);
    }
    if (c->due != NULL)
        loop_wake(c->loop); /* asked again from a continuation: the next round */
}

/* Appends p to list, so that calls are answered in the order made. */
static void append(struct pending **list, struct pending *p)
{
    while (*list != NULL)
        list = &(*list)->next;
    p->next = NULL;
    *list = p;
}

/* ---- forwarding ---- */

static void pending_free(struct pending *p)
{
    free(p->body);
    free(p);
}

/* On the feed's thread: central answered p (or could not). */
static void forwarded(void *arg, const struct edge_feed_answer *a)
{
    struct pending *p = arg;
    struct store_result *res = &p->res;
    char *body = NULL;

    if (a->result == EDGE_FEED_FORWARD_unavailable) {
        res->rc = -STORE_EUNAVAILABLE;
        snprintf(p->error, sizeof(p->error), "central: %s", a->error != NULL ? a->error : "no answer");
        res->error = p->error;
    } else if ((body = malloc(a->len + 1)) == NULL) {
        res->rc = -STORE_EUNAVAILABLE;
        res->error = "out of memory";
    } else {
        memcpy(body, a->body, a->len);
        body[a->len] = '\0';
        res->forwarded.status = (int)a->status;
        res->forwarded.body = body;
        res->forwarded.len = a->len;
        snprintf(p->retry_after, sizeof(p->retry_after), "%s", a->retry_after != NULL ? a->retry_after : "");
        snprintf(p->www_authenticate, sizeof(p->www_authenticate), "%s",
                 a->www_authenticate != NULL ? a->www_authenticate : "");
        snprintf(p->error_code, sizeof(p->error_code), "%s", a->error_code != NULL ? a->error_code : "");
        res->forwarded.retry_after = p->retry_after[0] != '\0' ? p->retry_after : NULL;
        res->forwarded.www_authenticate = p->www_authenticate[0] != '\0' ? p->www_authenticate : NULL;
        res->forwarded.error_code = p->error_code[0] != '\0' ? p->error_code : NULL;
        if (a->result == EDGE_FEED_FORWARD_unsynced) {
            snprintf(p->error, sizeof(p->error), "%s", a->error != NULL ? a->error : "");
            res->error = p->error; /* logged with the relayed answer */
        }
    }
    p->body = body;

    struct edge *e = p->e;
    pthread_mutex_lock(&e->lock);
    if (p->orphan) {
        pthread_mutex_unlock(&e->lock);
        pending_free(p);
        return;
    }
    struct conn *c = p->conn;
    for (struct pending **q = &c->flying; *q != NULL; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    c->nflying--;
    p->next = c->arrived;
    c->arrived = p;
    /* Under the lock: the connection closes its eventfd only after taking
     * it, with nothing of it left in flight. */
    loop_eventfd_signal(c->wake.fd);
    pthread_mutex_unlock(&e->lock);
}

/* The forwards central answered, passed on in the order answered. */
static void on_wake(struct loop_watch *w, uint32_t events)
{
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, wake));
    (void)events;

    loop_eventfd_take(c->wake.fd);
    pthread_mutex_lock(&c->e->lock);
    struct pending *list = c->arrived;
    c->arrived = NULL;
    pthread_mutex_unlock(&c->e->lock);
    struct pending *fifo = NULL;
    while (list != NULL) {
        struct pending *p = list;
        list = p->next;
        p->next = fifo;
        fifo = p;
    }
    while (fifo != NULL) {
        struct pending *p = fifo;
        fifo = p->next;
        p->done(p->arg, &p->res);
        pending_free(p);
    }
}

static void forward(struct conn *c, struct pending *p, const struct store_forward *q)
{
    struct edge *e = c->e;

    if (e->feed == NULL || q == NULL) {
        p->res.rc = -STORE_EUNAVAILABLE;
        p->res.error = "the edge does not follow central";
        append(&c->due, p);
        return;
    }
    pthread_mutex_lock(&e->lock);
    bool room_left = c->nflying < e->o.max_pending;
    if (room_left) {
        p->next = c->flying;
        c->flying = p;
        c->nflying++;
    }
    pthread_mutex_unlock(&e->lock);
    if (!room_left) {
        p->res.rc = -STORE_EOVERLOADED;
        p->res.error = "too many revocations wait for central";
        append(&c->due, p);
        return;
    }
    struct edge_feed_request r = {
        .method = q->method,
        .path = q->path,
        .query = q->query,
        .content_type = q->content_type,
        .authorization = q->authorization,
        .request_id = q->request_id,
        .body = q->body,
        .body_len = q->body_len,
    };
    /* p belongs to the feed now; forwarded() hands it back. */
    edge_feed_forward(e->feed, &r, forwarded, p);
}

/* ---- the interface ---- */

static void edge_call(struct store_conn *base, const struct store_call *q, store_done done, void *arg)
{
    struct conn *c = (struct conn *)base;
    struct pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        abort(); /* as hiredis does: a call cannot be answered without one */
    p->e = c->e;
    p->conn = c;
    p->op = q->op;
    p->done = done;
    p->arg = arg;
    /* The strings are the caller's, valid only during the call: their
     * digests stand for them. */
    if (q->op == STORE_IS_REVOKED) {
        store_key_digest(p->jti, q->iss, q->jti);
        if ((p->has_sub = q->sub != NULL))
            store_key_digest(p->sub, q->iss, q->sub);
        p->iat = q->iat;
    }
    if (q->op == STORE_FORWARD)
        forward(c, p, q->forward);
    else
        append(&c->due, p);
}

static struct store_conn *edge_conn_new(struct store *s, struct loop *loop)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->base.store = s;
    c->e = (struct edge *)s;
    c->loop = loop;
    c->wake = (struct loop_watch){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .on_event = on_wake};
    if (c->wake.fd < 0 || loop_watch(loop, &c->wake, EPOLLIN) < 0) {
        if (c->wake.fd >= 0)
            close(c->wake.fd);
        free(c);
        return NULL;
    }
    c->hook.before_sleep = before_sleep;
    loop_hook_add(loop, &c->hook);
    return &c->base;
}

/* Every call still open is answered: those central has, unavailable (its
 * answer, when it comes, goes nowhere); those it answered, with that
 * answer; the rest, unavailable, as a Redis connection's are when it
 * closes. */
static void edge_conn_free(struct store_conn *base)
{
    struct conn *c = (struct conn *)base;
    struct edge *e = c->e;
    struct {
        store_done done;
        void *arg;
    } *gone = NULL;
    int ngone = 0;

    pthread_mutex_lock(&e->lock);
    if (c->nflying > 0 && (gone = calloc((size_t)c->nflying, sizeof(*gone))) == NULL)
        abort();
    for (struct pending *p = c->flying; p != NULL; p = p->next) {
        p->orphan = true; /* the feed's thread frees it */
        gone[ngone].done = p->done;
        gone[ngone].arg = p->arg;
        ngone++;
    }
    c->flying = NULL;
    c->nflying = 0;
    struct pending *arrived = c->arrived;
    c->arrived = NULL;
    pthread_mutex_unlock(&e->lock);

    struct store_result down = {.rc = -STORE_EUNAVAILABLE, .error = "shutting down"};
    for (int i = 0; i < ngone; i++)
        gone[i].done(gone[i].arg, &down);
    free(gone);
    while (arrived != NULL) {
        struct pending *p = arrived;
        arrived = p->next;
        p->done(p->arg, &p->res);
        pending_free(p);
    }
    while (c->due != NULL) {
        struct pending *p = c->due;
        c->due = p->next;
        p->done(p->arg, &down);
        pending_free(p);
    }
    loop_unwatch(c->loop, &c->wake);
    close(c->wake.fd);
    loop_hook_remove(c->loop, &c->hook);
    free(c);
}

static int edge_start(struct store *s)
{
    struct edge *e = (struct edge *)s;
    char err[256];
    struct edge_feed_opts fo = {
        .url = e->url,
        .admin_url = e->admin_url,
        .key = e->key,
        .ca_file = e->ca_file,
        .user_agent = e->user_agent,
        .wait_s = e->o.poll_wait_s,
        .timeout_ms = e->o.timeout_ms,
        .apply = feed_apply,
        .progress = feed_progress,
        .arg = e,
    };

    e->started_ms = loop_now_ms();
    /* Fails only for want of memory or a thread (config.c checked the
     * URL), which main() reports. */
    return (e->feed = edge_feed_start(&fo, err, sizeof(err))) != NULL ? 0 : -1;
}

static void free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static void edge_free(struct store *s)
{
    struct edge *e = (struct edge *)s;

    edge_feed_stop(e->feed);
    store_set_free(e->set);
    pthread_rwlock_destroy(&e->set_lock);
    pthread_mutex_destroy(&e->lock);
    free(e->url);
    free(e->admin_url);
    free_secret(e->key);
    free(e->ca_file);
    free(e->user_agent);
    free(e);
}

static bool edge_up(struct store *s)
{
    struct edge *e = (struct edge *)s;
    const char *why;
    return vouch(e, loop_now_ms(), &why) == 0;
}

static bool edge_data_lost(struct store *s)
{
    (void)s;
    return false;
}

static const struct store_ops edge_ops = {
    .start = edge_start,
    .free = edge_free,
    .conn_new = edge_conn_new,
    .conn_free = edge_conn_free,
    .call = edge_call,
    .up = edge_up,
    .data_lost = edge_data_lost,
};

struct store *store_edge_new(const struct store_edge_opts *o, char *err, size_t errlen)
{
    struct edge *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->base.ops = &edge_ops;
    e->o = *o;
    pthread_rwlock_init(&e->set_lock, NULL);
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->replayed, false);
    atomic_init(&e->behind, false);
    atomic_init(&e->full, false);
    atomic_init(&e->heard_ms, 0);
    e->started_ms = loop_now_ms();
    snprintf(e->last_id, sizeof(e->last_id), "0");
    const char *url = o->feed_url != NULL ? o->feed_url : "";
    size_t ulen = strlen(url), slen = strlen("/v1/events");
    snprintf(e->central, sizeof(e->central), "%.*s", (int)(ulen >= slen ? ulen - slen : ulen), url);
    if ((e->url = strdup(url)) == NULL || (e->admin_url = strdup(o->admin_url != NULL ? o->admin_url : "")) == NULL ||
        (e->key = strdup(o->feed_key != NULL ? o->feed_key : "")) == NULL ||
        (e->ca_file = strdup(o->ca_file != NULL ? o->ca_file : "")) == NULL ||
        (e->user_agent = strdup(o->user_agent != NULL ? o->user_agent : "revokd")) == NULL ||
        (e->set = store_set_new(o->max_revocations)) == NULL) {
        snprintf(err, errlen, "out of memory");
        edge_free(&e->base);
        return NULL;
    }
    return &e->base;
}

int store_edge_set_key(struct store *s, const char *key)
{
    struct edge *e = (struct edge *)s;
    return e->feed != NULL ? edge_feed_set_key(e->feed, key) : -1;
}

void store_edge_stats(struct store *s, struct store_edge_stats *out)
{
    struct edge *e = (struct edge *)s;
    struct store_set_counts c;
    const char *why;
    int64_t now = loop_now_ms();

    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&e->set_lock);
    store_set_counts(e->set, &c);
    pthread_rwlock_unlock(&e->set_lock);
    out->jti = c.jti;
    out->sub = c.sub;
    out->bytes = c.bytes;
    out->replayed = atomic_load(&e->replayed);
    out->behind = atomic_load(&e->behind);
    out->full = atomic_load(&e->full);
    out->stale = vouch(e, now, &why) < 0;
    out->lag_ms = lag_ms(e, now);
    if (e->feed != NULL)
        edge_feed_stats(e->feed, &out->feed);
}
