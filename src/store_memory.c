/* store_memory.c - revocations in memory, answered a round later; see
 * store_memory.h. The records sit in the table an edge keeps too
 * (store_set.h), so both in-memory stores judge a revocation with the same
 * code; the log is a bounded array. */
#include "revokd/store_memory.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "revokd/jwt.h"
#include "revokd/loop.h"
#include "revokd/store_key.h"
#include "revokd/store_set.h"

/* Records a test's store holds at most. */
#define RECORDS_MAX (1 << 20)

/* A log entry with room for its strings. */
struct entry {
    uint64_t ms, seq; /* its id */
    struct store_event e; /* the strings point into the buffers below */
    char iss[JWT_STR_MAX + 1], value[JWT_STR_MAX + 1], reason[JWT_STR_MAX + 1], by[STORE_BY_MAX];
};

struct memory {
    struct store base; /* first: the interface's handle */
    pthread_mutex_t lock;
    enum store_memory_mode mode;
    struct store_set *records;
    struct entry log[STORE_MEMORY_LOG_MAX]; /* oldest first */
    size_t logged;
    uint64_t last_ms, last_seq; /* the last id given */
    bool adopted, marker; /* the data-loss marker: seen, and there */
    bool data_lost;
    unsigned calls;
    struct pending *held; /* calls held (STORE_MEMORY_HOLD), across connections */
};

/* A call between its making and its answer. */
struct pending {
    struct conn *conn;
    struct store_call call;
    unsigned char jkey[STORE_KEY_DIGEST_BYTES], skey[STORE_KEY_DIGEST_BYTES];
    char iss[JWT_STR_MAX + 1], value[JWT_STR_MAX + 1]; /* the jti or the subject */
    char reason[JWT_STR_MAX + 1], by[STORE_BY_MAX];
    uint64_t after_ms, after_seq; /* READ_LOG */
    int64_t deadline_ms;          /* READ_LOG: until when it may wait */
    struct entry *found;          /* READ_LOG: copies of what it read, */
    struct store_event *events;   /* and the result's array, pointing into them */
    bool has_sub;
    bool fail; /* the connection was lost meanwhile */
    store_done done;
    void *arg;
    struct pending *next;
};

struct conn {
    struct store_conn base;
    struct memory *m;
    struct loop *loop;
    struct loop_hook hook;
    struct loop_timer timer;  /* wakes the loop for the waiting reads */
    struct pending *due;      /* to answer in the next round */
    struct pending *waiting;  /* reads of the log that found nothing yet */
};

/* now in unix milliseconds, the log's clock. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Points e's strings at its own buffers (after a copy). */
static void entry_fix(struct entry *e)
{
    e->e.iss = e->iss;
    e->e.jti = e->e.kind == STORE_EVENT_JTI ? e->value : NULL;
    e->e.sub = e->e.kind == STORE_EVENT_SUBJECT ? e->value : NULL;
    e->e.reason = e->reason[0] != '\0' ? e->reason : NULL;
    e->e.by = e->by;
}

/* Appends p's revocation to the log, as the Redis scripts do: first the
 * entries older than the retention go (exactly; Redis drops whole nodes),
 * then the oldest if the array is full. */
static void log_append(struct memory *m, const struct pending *p, enum store_event_kind kind, int64_t exp,
                       int64_t cutoff)
{
    uint64_t ms = now_ms();
    size_t drop = 0;

    if (p->call.retention_ms > 0)
        while (drop < m->logged && m->log[drop].ms + (uint64_t)p->call.retention_ms < ms)
            drop++;
    if (drop == 0 && m->logged == STORE_MEMORY_LOG_MAX)
        drop = 1;
    memmove(m->log, m->log + drop, (m->logged - drop) * sizeof(m->log[0]));
    m->logged -= drop;
    if (ms > m->last_ms) {
        m->last_ms = ms;
        m->last_seq = 0;
    } else {
        m->last_seq++; /* the clock stood still or went back: as XADD * does */
    }
    struct entry *e = &m->log[m->logged++];
    memset(e, 0, sizeof(*e));
    e->ms = m->last_ms;
    e->seq = m->last_seq;
    snprintf(e->e.id, sizeof(e->e.id), "%" PRIu64 "-%" PRIu64, e->ms, e->seq);
    e->e.kind = kind;
    e->e.exp = exp;
    e->e.cutoff = cutoff;
    e->e.at = (int64_t)ms;
    snprintf(e->iss, sizeof(e->iss), "%s", p->iss);
    snprintf(e->value, sizeof(e->value), "%s", p->value);
    snprintf(e->reason, sizeof(e->reason), "%s", p->reason);
    snprintf(e->by, sizeof(e->by), "%s", p->by);
    entry_fix(e);
}

/* The entries after p's id into p->found (at most its limit); their count. */
static size_t log_read(struct memory *m, struct pending *p)
{
    size_t first = 0, n = 0;

    while (first < m->logged && (m->log[first].ms < p->after_ms ||
                                 (m->log[first].ms == p->after_ms && m->log[first].seq <= p->after_seq)))
        first++;
    n = m->logged - first;
    if (n > (size_t)p->call.limit)
        n = (size_t)p->call.limit;
    if (n == 0)
        return 0;
    free(p->found);
    free(p->events);
    p->found = malloc(n * sizeof(*p->found));
    p->events = malloc(n * sizeof(*p->events));
    if (p->found == NULL || p->events == NULL)
        abort(); /* a test's store */
    memcpy(p->found, m->log + first, n * sizeof(*p->found));
    for (size_t i = 0; i < n; i++) {
        entry_fix(&p->found[i]);
        p->events[i] = p->found[i].e;
    }
    return n;
}

/* Room for one more record: the table doubled. -1 when out of memory. */
static int room(struct memory *m, int64_t now)
{
    if (!store_set_full(m->records))
        return 0;
    struct store_set *grown = store_set_grown(m->records, now);
    if (grown == NULL)
        return -1;
    store_set_swap(m->records, grown);
    store_set_free(grown);
    return 0;
}

/* The answer to p, made now. */
static void answer(struct memory *m, struct pending *p, struct store_result *res)
{
    const struct store_call *q = &p->call;
    int64_t now = (int64_t)time(NULL);

    memset(res, 0, sizeof(*res));
    if (p->fail || m->mode == STORE_MEMORY_FAIL) {
        res->rc = -STORE_EUNAVAILABLE;
        res->error = "the store is unavailable";
        return;
    }
    if (m->mode == STORE_MEMORY_OVERLOADED && q->op != STORE_PROBE) {
        res->rc = -STORE_EOVERLOADED;
        res->error = "too many calls waiting";
        return;
    }
    bool writes = m->mode != STORE_MEMORY_NOREPLICAS;
    switch (q->op) {
    case STORE_IS_REVOKED:
        res->revoked = store_set_is_revoked(m->records, p->jkey, p->has_sub ? p->skey : NULL, q->iat, now);
        break;
    case STORE_REVOKE_JTI: {
        if (!writes)
            break;
        /* As the Redis script: only a new record or a later expiry is a
         * change, and only a change is logged. */
        int rc = room(m, now) < 0 ? -1 : store_set_revoke_jti(m->records, p->jkey, q->expires_at, now);
        if (rc < 0) {
            res->rc = -STORE_EUNAVAILABLE;
            res->error = "out of memory";
        } else if (rc == 0) {
            log_append(m, p, STORE_EVENT_JTI, q->expires_at, 0);
        }
        break;
    }
    case STORE_REVOKE_ALL: {
        if (!writes)
            break;
        int rc = room(m, now) < 0 ? -1
                                  : store_set_revoke_all(m->records, p->skey, q->cutoff, now + q->ttl, now,
                                                         &res->cutoff);
        if (rc < 0) {
            res->rc = -STORE_EUNAVAILABLE;
            res->error = "out of memory";
        } else if (rc == 0) {
            log_append(m, p, STORE_EVENT_SUBJECT, now + q->ttl, q->cutoff);
        }
        break;
    }
    case STORE_READ_LOG:
        res->n_events = log_read(m, p);
        res->events = p->events;
        return;
    case STORE_FORWARD:
        res->rc = -STORE_EUNAVAILABLE;
        res->error = "only an edge forwards revocations";
        return;
    case STORE_PROBE:
        snprintf(res->status.role, sizeof(res->status.role), "master");
        snprintf(res->status.address, sizeof(res->status.address), "memory");
        res->status.accepts_revocations = writes;
        if (writes && !m->adopted)
            m->adopted = m->marker = true;
        m->data_lost = m->adopted && !m->marker;
        if (m->data_lost) {
            res->status.data_lost = true;
            res->rc = -STORE_EDATALOST;
            res->error = "the store lost its data";
        }
        return;
    }
    if (!writes && q->op != STORE_IS_REVOKED && res->rc == 0) {
        res->rc = -STORE_ENOTREPLICATED;
        res->error = "NOREPLICAS Not enough good replicas to write.";
    }
}

/* Appends p to list: calls are answered in the order they were made, as a
 * pipelined Redis connection answers them. */
static void append(struct pending **list, struct pending *p)
{
    while (*list != NULL)
        list = &(*list)->next;
    p->next = NULL;
    *list = p;
}

static void pending_free(struct pending *p)
{
    free(p->found);
    free(p->events);
    free(p);
}

/* Answers the calls due, and the reads of the log that wait, again, each
 * round; a read that still finds nothing and may wait on waits on. */
static void before_sleep(struct loop_hook *h)
{
    struct conn *c = (struct conn *)((char *)h - offsetof(struct conn, hook));
    struct pending *due = c->waiting;
    int64_t now = loop_now_ms();

    c->waiting = NULL;
    while (c->due != NULL) {
        struct pending *p = c->due;
        c->due = p->next;
        append(&due, p);
    }
    while (due != NULL) {
        struct pending *p = due;
        struct store_result res;
        due = p->next;
        pthread_mutex_lock(&c->m->lock);
        answer(c->m, p, &res);
        pthread_mutex_unlock(&c->m->lock);
        if (p->call.op == STORE_READ_LOG && res.rc == 0 && res.n_events == 0 && now < p->deadline_ms) {
            p->next = c->waiting;
            c->waiting = p;
            continue;
        }
        p->done(p->arg, &res);
        pending_free(p);
    }
    if (c->waiting != NULL)
        loop_timer_arm(c->loop, &c->timer, STORE_LOG_POLL_MS);
    if (c->due != NULL)
        loop_wake(c->loop); /* asked again from a continuation: the next round */
}

static void on_timer(struct loop_timer *t)
{
    (void)t; /* it only woke the loop: before_sleep reads again */
}

static void memory_call(struct store_conn *base, const struct store_call *q, store_done done, void *arg)
{
    struct conn *c = (struct conn *)base;
    struct memory *m = c->m;
    struct pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        abort();
    p->conn = c;
    p->call = *q;
    p->done = done;
    p->arg = arg;
    if (q->jti != NULL)
        store_key_digest(p->jkey, q->iss, q->jti);
    if ((p->has_sub = q->sub != NULL))
        store_key_digest(p->skey, q->iss, q->sub);
    if (q->iss != NULL)
        snprintf(p->iss, sizeof(p->iss), "%s", q->iss);
    snprintf(p->value, sizeof(p->value), "%s", q->op == STORE_REVOKE_ALL ? q->sub : q->jti != NULL ? q->jti : "");
    if (q->reason != NULL)
        snprintf(p->reason, sizeof(p->reason), "%s", q->reason);
    if (q->by != NULL)
        snprintf(p->by, sizeof(p->by), "%s", q->by);
    if (q->op == STORE_READ_LOG && strcmp(q->after, "0") != 0 &&
        sscanf(q->after, "%" SCNu64 "-%" SCNu64, &p->after_ms, &p->after_seq) != 2)
        abort(); /* the caller passes a canonical id (store.h) */
    p->deadline_ms = loop_now_ms() + q->wait_ms;
    /* The strings are the caller's, valid only during the call: the keys
     * and the copies above stand for them. */
    p->call.iss = p->call.jti = p->call.sub = p->call.reason = p->call.by = p->call.after = NULL;
    pthread_mutex_lock(&m->lock);
    m->calls++;
    bool hold = m->mode == STORE_MEMORY_HOLD;
    if (hold)
        append(&m->held, p);
    pthread_mutex_unlock(&m->lock);
    if (!hold)
        append(&c->due, p);
}

/* Hands the held calls back to their connections; fail marks them lost. */
static void unhold(struct store *s, bool fail)
{
    struct memory *m = (struct memory *)s;

    pthread_mutex_lock(&m->lock);
    struct pending *held = m->held;
    m->held = NULL;
    if (m->mode == STORE_MEMORY_HOLD)
        m->mode = STORE_MEMORY_ANSWER;
    pthread_mutex_unlock(&m->lock);
    while (held != NULL) {
        struct pending *p = held;
        held = p->next;
        p->fail = fail;
        append(&p->conn->due, p);
        loop_wake(p->conn->loop);
    }
}

void store_memory_release(struct store *s)
{
    unhold(s, false);
}

void store_memory_drop(struct store *s)
{
    unhold(s, true);
}

void store_memory_set_mode(struct store *s, enum store_memory_mode mode)
{
    struct memory *m = (struct memory *)s;
    pthread_mutex_lock(&m->lock);
    m->mode = mode;
    pthread_mutex_unlock(&m->lock);
}

void store_memory_flush(struct store *s)
{
    struct memory *m = (struct memory *)s;
    pthread_mutex_lock(&m->lock);
    store_set_clear(m->records);
    m->logged = 0;
    m->marker = false;
    pthread_mutex_unlock(&m->lock);
}

size_t store_memory_log(struct store *s, struct store_event *out, size_t max)
{
    struct memory *m = (struct memory *)s;
    pthread_mutex_lock(&m->lock);
    size_t n = m->logged < max ? m->logged : max;
    for (size_t i = 0; i < n; i++)
        out[i] = m->log[i].e;
    pthread_mutex_unlock(&m->lock);
    return n;
}

unsigned store_memory_calls(struct store *s)
{
    struct memory *m = (struct memory *)s;
    pthread_mutex_lock(&m->lock);
    unsigned n = m->calls;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static struct store_conn *memory_conn_new(struct store *s, struct loop *loop)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base.store = s;
    c->m = (struct memory *)s;
    c->loop = loop;
    c->hook.before_sleep = before_sleep;
    c->timer.on_timer = on_timer;
    loop_hook_add(loop, &c->hook);
    return &c->base;
}

/* The calls still due or held are answered unavailable, as a Redis
 * connection's are when it closes. */
static void memory_conn_free(struct store_conn *base)
{
    struct conn *c = (struct conn *)base;
    struct memory *m = c->m;

    pthread_mutex_lock(&m->lock);
    for (struct pending **p = &m->held; *p != NULL;) {
        if ((*p)->conn == c) {
            struct pending *mine = *p;
            *p = mine->next;
            mine->next = c->due;
            c->due = mine;
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&m->lock);
    while (c->waiting != NULL) {
        struct pending *p = c->waiting;
        c->waiting = p->next;
        append(&c->due, p);
    }
    while (c->due != NULL) {
        struct pending *p = c->due;
        struct store_result res = {.rc = -STORE_EUNAVAILABLE, .error = "shutting down"};
        c->due = p->next;
        p->done(p->arg, &res);
        pending_free(p);
    }
    loop_hook_remove(c->loop, &c->hook);
    loop_timer_disarm(c->loop, &c->timer);
    free(c);
}

static int memory_start(struct store *s)
{
    (void)s;
    return 0;
}

static void memory_free(struct store *s)
{
    struct memory *m = (struct memory *)s;
    store_set_free(m->records);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool memory_up(struct store *s)
{
    return ((struct memory *)s)->mode != STORE_MEMORY_FAIL;
}

static bool memory_data_lost(struct store *s)
{
    struct memory *m = (struct memory *)s;
    pthread_mutex_lock(&m->lock);
    bool lost = m->data_lost;
    pthread_mutex_unlock(&m->lock);
    return lost;
}

static const struct store_ops memory_ops = {
    .start = memory_start,
    .free = memory_free,
    .conn_new = memory_conn_new,
    .conn_free = memory_conn_free,
    .call = memory_call,
    .up = memory_up,
    .data_lost = memory_data_lost,
};

struct store *store_memory_new(void)
{
    struct memory *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->records = store_set_new(RECORDS_MAX)) == NULL) {
        free(m);
        return NULL;
    }
    m->base.ops = &memory_ops;
    pthread_mutex_init(&m->lock, NULL);
    return &m->base;
}
