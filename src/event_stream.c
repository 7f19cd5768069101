/* event_stream.c - the revocation log pushed to its consumers as Server-Sent
 * Events: one thread per node, one blocking read; see event_stream.h. */
#include "revokd/event_stream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "revokd/event.h"
#include "revokd/log.h"
#include "revokd/loop.h"

/* Entries read at a time, by a page or by the blocking read. */
#define PAGE 1000
/* After a failed blocking read, the next comes this much later: as soon
 * as the store's connection may be opened again (store_redis_conn.c), so
 * that the streams go on within a tenth of a second of Redis coming back. */
#define RETRY_MS 100
#define HEARTBEAT ": heartbeat\n\n"
#define WHO_MAX 96

#define END_NAME(name, text) #name,
static const char *const end_names[] = {EVENT_STREAM_ENDS(END_NAME)};
#undef END_NAME

const char *event_stream_end_name(enum event_stream_end e)
{
    return e < EVENT_STREAM_NENDS ? end_names[e] : "unknown";
}

enum consumer_state { CATCHING_UP, LIVE, ENDED };

/* Bytes to send: p[off..len). */
struct text {
    char *p;
    size_t off, len, cap;
};

struct event_consumer {
    struct event_stream *es;
    struct event_consumer *next;
    enum consumer_state state;
    enum event_stream_end end;          /* ENDED: why */
    char last[STORE_EVENT_ID_MAX];      /* the last entry queued, or where it resumes */
    bool fetching;                      /* a page is being read for it */
    bool closed;                        /* the transport let go */
    bool suspended;                     /* the transport's connection is */
    const struct event_stream_transport *t;
    void *conn, *arg;
    struct text out;                    /* bytes not yet read by the transport */
    uint64_t events;
    int64_t opened_ms;
    char who[WHO_MAX];
};

struct event_stream {
    struct event_stream_opts o;
    pthread_t thread;
    bool started;
    struct loop *loop;
    struct loop_watch wake;      /* eventfd: a consumer to serve, or stop */
    struct loop_hook hook;       /* before the loop sleeps: pages to read, reads to start */
    struct loop_timer retry;     /* the next blocking read after a failed one */
    struct store_conn *follow;   /* the blocking reads' connection */
    struct store_conn *pages;    /* the catching-up consumers' */
    pthread_mutex_t lock;        /* everything below, and every consumer */
    struct event_consumer *consumers;
    unsigned open;
    bool stopping;
    bool following;              /* a blocking read is in flight, or waits for retry */
    bool failing;                /* the last blocking read failed (logged once) */
    char live[STORE_EVENT_ID_MAX]; /* where the blocking reads are; "" before the first */
    struct event_stream_stats stats;
};

/* ---- the text of a stream ---- */

/* Appends n bytes to t. Returns 0, or -1 when out of memory. */
static int put(struct text *t, const char *s, size_t n)
{
    if (t->off > 0 && t->off == t->len)
        t->off = t->len = 0;
    if (t->len + n > t->cap) {
        size_t cap = t->cap > 0 ? t->cap : 4096;
        while (cap < t->len + n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL)
            return -1;
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    return 0;
}

static void text_free(struct text *t)
{
    free(t->p);
    *t = (struct text){0};
}

/* One entry as an SSE event, appended to t. Returns 0 or -1. */
static int render(struct text *t, const struct store_event *e)
{
    char *json = event_json(e);
    char head[STORE_EVENT_ID_MAX + 48];
    int n = snprintf(head, sizeof(head), "id: %s\nevent: revocation\ndata: ", e->id);
    int rc = json != NULL && put(t, head, (size_t)n) == 0 && put(t, json, strlen(json)) == 0 &&
                     put(t, "\n\n", 2) == 0
                 ? 0
                 : -1;

    free(json);
    return rc;
}

/* ---- consumers (the lock held) ---- */

static void wake_transport(struct event_consumer *c)
{
    if (c->suspended && c->t != NULL) {
        c->suspended = false;
        c->t->resume(c->conn, c->arg);
    }
}

static void end(struct event_consumer *c, enum event_stream_end why)
{
    if (c->state == ENDED)
        return;
    c->state = ENDED;
    c->end = why;
    c->es->stats.ends[why]++;
    if (why == EVENT_STREAM_END_cut_off || why == EVENT_STREAM_END_store_error)
        text_free(&c->out);
    if (why != EVENT_STREAM_END_closed) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "consumer", c->who);
        cJSON_AddStringToObject(f, "why", event_stream_end_name(why));
        cJSON_AddStringToObject(f, "last_id", c->last);
        cJSON_AddNumberToObject(f, "events", (double)c->events);
        cJSON_AddNumberToObject(f, "seconds", (double)(loop_now_ms() - c->opened_ms) / 1000);
        bool orderly = why == EVENT_STREAM_END_stopped || why == EVENT_STREAM_END_reloaded;
        log_event(orderly ? LOG_INFO : LOG_WARN, "feed_consumer_ended", f);
    }
    wake_transport(c);
}

static void unlink_consumer(struct event_stream *es, struct event_consumer *c)
{
    for (struct event_consumer **p = &es->consumers; *p != NULL; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    es->open--;
    text_free(&c->out);
    free(c);
}

/* Appends the entries of a page read for c that come after c->last. */
static int deliver(struct event_consumer *c, const struct store_result *res)
{
    for (size_t i = 0; i < res->n_events; i++) {
        const struct store_event *e = &res->events[i];
        if (!event_id_after(e->id, c->last))
            continue;
        if (render(&c->out, e) < 0)
            return -1;
        snprintf(c->last, sizeof(c->last), "%s", e->id);
        c->events++;
        c->es->stats.events++;
    }
    return 0;
}

/* The entries of a blocking read, rendered once for every live consumer:
 * entry i's event begins at at[i] of all. */
struct batch {
    struct text all;
    size_t *at;
};

static int batch_render(struct batch *b, const struct store_result *res)
{
    if ((b->at = calloc(res->n_events, sizeof(*b->at))) == NULL)
        return -1;
    for (size_t i = 0; i < res->n_events; i++) {
        b->at[i] = b->all.len;
        if (render(&b->all, &res->events[i]) < 0)
            return -1;
    }
    return 0;
}

/* Appends the entries of the batch that come after c->last. */
static int deliver_batch(struct event_consumer *c, const struct store_result *res, const struct batch *b)
{
    size_t i = 0;

    while (i < res->n_events && !event_id_after(res->events[i].id, c->last))
        i++;
    if (i == res->n_events)
        return 0;
    if (put(&c->out, b->all.p + b->at[i], b->all.len - b->at[i]) < 0)
        return -1;
    snprintf(c->last, sizeof(c->last), "%s", res->events[res->n_events - 1].id);
    c->events += res->n_events - i;
    c->es->stats.events += res->n_events - i;
    return 0;
}

/* ---- the stream's thread ---- */

static void follow_done(void *arg, const struct store_result *res);

static void follow_start(struct event_stream *es)
{
    struct store_call call = {.op = STORE_READ_LOG, .after = es->live, .limit = PAGE,
                              .wait_ms = es->o.heartbeat_ms, .block = true};
    store_call(es->follow, &call, follow_done, es);
}

static void on_retry(struct loop_timer *t)
{
    struct event_stream *es = (struct event_stream *)((char *)t - offsetof(struct event_stream, retry));
    pthread_mutex_lock(&es->lock);
    bool go = !es->stopping;
    es->following = go;
    pthread_mutex_unlock(&es->lock);
    if (go)
        follow_start(es);
}

/* A blocking read came back: its entries to every live consumer, or, with
 * none, a heartbeat; then the next read while anyone is live. */
static void follow_done(void *arg, const struct store_result *res)
{
    struct event_stream *es = arg;
    struct batch b = {0};
    bool again = false;
    int rendered = res->rc == 0 && res->n_events > 0 ? batch_render(&b, res) : 0;

    pthread_mutex_lock(&es->lock);
    if (res->rc < 0) {
        if (!es->failing && !es->stopping)
            log_msg(LOG_WARN, "feed_read_failed", "the revocation log cannot be followed: %s", res->error);
        es->failing = true;
        es->following = !es->stopping;
        if (es->following)
            loop_timer_arm(es->loop, &es->retry, RETRY_MS);
        pthread_mutex_unlock(&es->lock);
        return;
    }
    if (es->failing)
        log_msg(LOG_INFO, "feed_read_recovered", "the revocation log is followed again");
    es->failing = false;
    for (struct event_consumer *c = es->consumers; c != NULL; c = c->next) {
        if (c->state != LIVE)
            continue;
        if (c->out.len - c->out.off > es->o.buffer_max) {
            end(c, EVENT_STREAM_END_cut_off);
            continue;
        }
        if (rendered < 0 ||
            (res->n_events > 0 ? deliver_batch(c, res, &b) : put(&c->out, HEARTBEAT, sizeof(HEARTBEAT) - 1)) < 0) {
            end(c, EVENT_STREAM_END_cut_off); /* out of memory: no room either */
            continue;
        }
        again = true;
        wake_transport(c);
    }
    if (res->n_events > 0)
        snprintf(es->live, sizeof(es->live), "%s", res->events[res->n_events - 1].id);
    es->following = again && !es->stopping;
    pthread_mutex_unlock(&es->lock);
    text_free(&b.all);
    free(b.at);
    if (es->following)
        follow_start(es);
}

/* A page for a consumer catching up came back. A short one that reaches
 * where the blocking reads are makes it live (an entry it already has is
 * skipped there by its id); before the first read, the page's end is where
 * they start. */
static void page_done(void *arg, const struct store_result *res)
{
    struct event_consumer *c = arg;
    struct event_stream *es = c->es;
    bool follow = false;

    pthread_mutex_lock(&es->lock);
    c->fetching = false;
    if (c->closed) {
        unlink_consumer(es, c);
    } else if (c->state == CATCHING_UP) {
        if (res->rc < 0 || deliver(c, res) < 0) {
            log_msg(LOG_WARN, "feed_page_failed", "a page of the revocation log could not be read for %s: %s",
                    c->who, res->rc < 0 ? res->error : "out of memory");
            end(c, EVENT_STREAM_END_store_error);
        } else if (res->n_events < PAGE) {
            if (es->live[0] == '\0')
                snprintf(es->live, sizeof(es->live), "%s", c->last);
            if (!event_id_after(es->live, c->last)) {
                c->state = LIVE;
                follow = !es->following && !es->stopping;
                es->following |= follow;
                if (put(&c->out, HEARTBEAT, sizeof(HEARTBEAT) - 1) < 0)
                    end(c, EVENT_STREAM_END_cut_off);
            }
        }
        wake_transport(c);
    }
    pthread_mutex_unlock(&es->lock);
    if (follow)
        follow_start(es);
}

/* Before the stream's loop sleeps: a page for every consumer catching up
 * that has sent all it holds. */
static void before_sleep(struct loop_hook *h)
{
    struct event_stream *es = (struct event_stream *)((char *)h - offsetof(struct event_stream, hook));

    /* A store answers a call later, on this thread, never inside it
     * (store.h): page_done() cannot meet the lock held here. */
    pthread_mutex_lock(&es->lock);
    for (struct event_consumer *c = es->consumers; c != NULL; c = c->next)
        if (c->state == CATCHING_UP && !c->fetching && !c->closed && c->out.off == c->out.len) {
            struct store_call call = {.op = STORE_READ_LOG, .after = c->last, .limit = PAGE};
            c->fetching = true;
            store_call(es->pages, &call, page_done, c);
        }
    pthread_mutex_unlock(&es->lock);
}

static void wake(struct event_stream *es)
{
    loop_eventfd_signal(es->wake.fd);
}

static void *run(void *arg)
{
    struct event_stream *es = arg;

    for (;;) {
        pthread_mutex_lock(&es->lock);
        bool stop = es->stopping;
        pthread_mutex_unlock(&es->lock);
        if (stop)
            break;
        loop_poll(es->loop, -1);
    }
    /* Answers the calls in flight as unavailable: their consumers have
     * ended already. */
    store_conn_free(es->follow);
    store_conn_free(es->pages);
    es->follow = es->pages = NULL;
    return NULL;
}

/* ---- the transport's side ---- */

struct event_consumer *event_stream_open(struct event_stream *es, const char *after, const char *who,
                                         const char **why)
{
    struct event_consumer *c = NULL;

    pthread_mutex_lock(&es->lock);
    if (es->stopping)
        *why = "the node is stopping";
    else if (es->open >= es->o.max_consumers)
        *why = "this node serves as many event streams as it may (REVOKD_FEED_MAX_CONSUMERS)";
    else if ((c = calloc(1, sizeof(*c))) == NULL)
        *why = "out of memory";
    if (c != NULL) {
        c->es = es;
        c->state = CATCHING_UP;
        snprintf(c->last, sizeof(c->last), "%s", after);
        snprintf(c->who, sizeof(c->who), "%s", who);
        c->opened_ms = loop_now_ms();
        c->next = es->consumers;
        es->consumers = c;
        es->open++;
    }
    pthread_mutex_unlock(&es->lock);
    if (c != NULL)
        wake(es);
    return c;
}

void event_stream_attach(struct event_consumer *c, const struct event_stream_transport *t, void *conn,
                         void *arg)
{
    pthread_mutex_lock(&c->es->lock);
    c->t = t;
    c->conn = conn;
    c->arg = arg;
    pthread_mutex_unlock(&c->es->lock);
}

ssize_t event_stream_read(struct event_consumer *c, char *buf, size_t size)
{
    struct event_stream *es = c->es;
    ssize_t n;
    bool page = false;

    pthread_mutex_lock(&es->lock);
    if (c->state == ENDED && c->end != EVENT_STREAM_END_stopped && c->end != EVENT_STREAM_END_reloaded) {
        n = -2;
    } else if (c->out.off < c->out.len) {
        n = (ssize_t)(c->out.len - c->out.off < size ? c->out.len - c->out.off : size);
        memcpy(buf, c->out.p + c->out.off, (size_t)n);
        c->out.off += (size_t)n;
        page = c->state == CATCHING_UP && c->out.off == c->out.len && !c->fetching;
    } else if (c->state == ENDED) {
        n = -1;
    } else {
        n = 0;
        page = c->state == CATCHING_UP && !c->fetching;
        c->suspended = true;
        c->t->suspend(c->conn, c->arg);
    }
    pthread_mutex_unlock(&es->lock);
    if (page)
        wake(es);
    return n;
}

void event_stream_close(struct event_consumer *c)
{
    struct event_stream *es = c->es;

    pthread_mutex_lock(&es->lock);
    end(c, EVENT_STREAM_END_closed);
    c->closed = true;
    c->suspended = false;
    if (!c->fetching)
        unlink_consumer(es, c);
    pthread_mutex_unlock(&es->lock);
}

/* ---- the node's side ---- */

struct event_stream *event_stream_start(const struct event_stream_opts *o, char *err, size_t errlen)
{
    struct event_stream *es = calloc(1, sizeof(*es));

    if (es == NULL) {
        snprintf(err, errlen, "out of memory for the event streams");
        return NULL;
    }
    es->o = *o;
    pthread_mutex_init(&es->lock, NULL);
    es->wake = (struct loop_watch){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .on_event = loop_eventfd_on_event};
    es->hook.before_sleep = before_sleep;
    es->retry.on_timer = on_retry;
    /* The hook goes first: the store connections' own hooks, after it,
     * send the calls it makes. */
    if (es->wake.fd < 0 || (es->loop = loop_new()) == NULL || loop_watch(es->loop, &es->wake, EPOLLIN) < 0 ||
        (loop_hook_add(es->loop, &es->hook), (es->follow = store_conn_new(o->store, es->loop)) == NULL) ||
        (es->pages = store_conn_new(o->store, es->loop)) == NULL) {
        snprintf(err, errlen, "cannot set up the event streams' loop");
        event_stream_free(es);
        return NULL;
    }
    if (pthread_create(&es->thread, NULL, run, es) != 0) {
        snprintf(err, errlen, "cannot start the event streams' thread");
        event_stream_free(es);
        return NULL;
    }
    es->started = true;
    return es;
}

void event_stream_end_all(struct event_stream *es, enum event_stream_end why)
{
    if (es == NULL)
        return;
    pthread_mutex_lock(&es->lock);
    for (struct event_consumer *c = es->consumers; c != NULL; c = c->next)
        end(c, why);
    pthread_mutex_unlock(&es->lock);
}

void event_stream_stop(struct event_stream *es)
{
    if (es == NULL)
        return;
    pthread_mutex_lock(&es->lock);
    es->stopping = true;
    pthread_mutex_unlock(&es->lock);
    event_stream_end_all(es, EVENT_STREAM_END_stopped);
    if (es->started) {
        wake(es);
        pthread_join(es->thread, NULL);
        es->started = false;
    }
}

void event_stream_free(struct event_stream *es)
{
    if (es == NULL)
        return;
    event_stream_stop(es);
    store_conn_free(es->follow);
    store_conn_free(es->pages);
    while (es->consumers != NULL)
        unlink_consumer(es, es->consumers);
    if (es->loop != NULL) {
        if (es->wake.added)
            loop_unwatch(es->loop, &es->wake);
        loop_free(es->loop);
    }
    if (es->wake.fd >= 0)
        close(es->wake.fd);
    pthread_mutex_destroy(&es->lock);
    free(es);
}

void event_stream_stats(struct event_stream *es, struct event_stream_stats *out)
{
    pthread_mutex_lock(&es->lock);
    *out = es->stats;
    out->consumers = 0;
    for (const struct event_consumer *c = es->consumers; c != NULL; c = c->next)
        out->consumers += c->state != ENDED;
    pthread_mutex_unlock(&es->lock);
}
