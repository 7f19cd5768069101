/* work.c - the pool's threads, its queue, and the loops' inboxes; see
 * work.h.
 *
 * One lock guards the queue, one each inbox. Under load nobody sleeps: a
 * pool thread takes the next item as soon as it finishes one, and a loop
 * takes every item that came back in one go, woken by one eventfd write for
 * the whole batch. */
#include "revokd/work.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "revokd/loop.h"

struct work_pool {
    pthread_mutex_t lock;
    pthread_cond_t ready;     /* work queued, or stopping */
    struct work *head, *tail; /* first in, first out: no request waits behind later ones */
    unsigned idle;            /* threads waiting on ready */
    atomic_uint queued;       /* items in the queue; read without the lock */
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

struct work_inbox {
    struct loop_watch watch; /* first: on_back finds the inbox from it */
    struct loop *loop;
    struct work_pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t all_back; /* pending reached 0 while draining */
    struct work *back;       /* finished, done() not run yet */
    unsigned nback;          /* items in back */
    unsigned pending;        /* submitted, not back yet */
    bool woken;              /* the eventfd was written since the loop last took back */
    bool draining;
};

/* ---- the pool ------------------------------------------------------------ */

static void inbox_put(struct work_inbox *in, struct work *w);

static void *pool_thread(void *arg)
{
    struct work_pool *p = arg;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->ready, &p->lock);
            p->idle--;
        }
        struct work *w = p->head;
        if (w == NULL) { /* stopping, and nothing is left */
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        if ((p->head = w->next) == NULL)
            p->tail = NULL;
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
        pthread_mutex_unlock(&p->lock);
        w->run(w);
        inbox_put(w->inbox, w);
    }
}

void work_pool_free(struct work_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

struct work_pool *work_pool_new(unsigned threads)
{
    struct work_pool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    if ((p->threads = calloc(threads, sizeof(*p->threads))) == NULL) {
        work_pool_free(p);
        return NULL;
    }
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, pool_thread, p) != 0) {
            work_pool_free(p);
            return NULL;
        }
    return p;
}

void work_submit(struct work_inbox *in, struct work *w)
{
    struct work_pool *p = in->pool;

    w->inbox = in;
    w->next = NULL;
    pthread_mutex_lock(&in->lock);
    in->pending++;
    pthread_mutex_unlock(&in->lock);

    /* At once, not at the end of the loop's round: a pool thread starts on
     * it while the loop reads the next requests. */
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
    if (p->idle > 0)
        pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
}

bool work_backlogged(const struct work_inbox *in)
{
    struct work_pool *p = in->pool;
    return atomic_load_explicit(&p->queued, memory_order_relaxed) >= WORK_BACKLOG * p->nthreads;
}

/* ---- inboxes ------------------------------------------------------------- */

/* Items handed back before the loop is woken, while more of its items are
 * still in the pool: waking a loop costs it (and the pool thread) a system
 * call and a switch each, as much as the rest of a request's work. */
#define BATCH 8

/* On a pool thread: hands w back. The loop is woken once the last of its
 * items is back or a batch is ready; whichever comes first, every item
 * comes back within BATCH completions, since while some are still pending
 * more completions follow. The loop then takes the whole list. */
static void inbox_put(struct work_inbox *in, struct work *w)
{
    bool wake;

    pthread_mutex_lock(&in->lock);
    w->next = in->back;
    in->back = w;
    in->nback++;
    in->pending--;
    wake = !in->woken && (in->pending == 0 || in->nback >= BATCH);
    in->woken |= wake;
    /* Under the lock: once the last item is back, a drain may return and
     * the inbox, its eventfd with it, be freed. */
    if (wake)
        loop_eventfd_signal(in->watch.fd);
    if (in->pending == 0 && in->draining)
        pthread_cond_signal(&in->all_back);
    pthread_mutex_unlock(&in->lock);
}

/* Runs done() of every item back now. */
static void run_back(struct work_inbox *in)
{
    pthread_mutex_lock(&in->lock);
    struct work *w = in->back;
    in->back = NULL;
    in->nback = 0;
    in->woken = false;
    pthread_mutex_unlock(&in->lock);
    while (w != NULL) {
        struct work *next = w->next; /* done() may submit w again */
        w->done(w);
        w = next;
    }
}

static void on_back(struct loop_watch *lw, uint32_t events)
{
    struct work_inbox *in = (struct work_inbox *)lw;
    (void)events;
    loop_eventfd_take(lw->fd); /* an earlier round may have taken the items with it */
    run_back(in);
}

struct work_inbox *work_inbox_new(struct loop *l, struct work_pool *p)
{
    struct work_inbox *in = calloc(1, sizeof(*in));

    if (in == NULL)
        return NULL;
    in->loop = l;
    in->pool = p;
    in->watch = (struct loop_watch){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .on_event = on_back};
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->all_back, NULL);
    if (in->watch.fd < 0 || loop_watch(l, &in->watch, EPOLLIN) < 0) {
        work_inbox_free(in);
        return NULL;
    }
    return in;
}

void work_inbox_drain(struct work_inbox *in)
{
    for (;;) {
        pthread_mutex_lock(&in->lock);
        in->draining = true;
        while (in->pending > 0)
            pthread_cond_wait(&in->all_back, &in->lock);
        bool empty = in->back == NULL;
        pthread_mutex_unlock(&in->lock);
        if (empty)
            return;
        run_back(in); /* a done() may submit more: go round again */
    }
}

void work_inbox_free(struct work_inbox *in)
{
    if (in == NULL)
        return;
    if (in->watch.fd >= 0) {
        loop_unwatch(in->loop, &in->watch);
        close(in->watch.fd);
    }
    pthread_cond_destroy(&in->all_back);
    pthread_mutex_destroy(&in->lock);
    free(in);
}
