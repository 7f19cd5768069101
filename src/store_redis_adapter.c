/* store_redis_adapter.c - hiredis's event hooks on revokd's loop; see
 * store_redis_adapter.h. */
#include "store_redis_adapter.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "revokd/loop.h"

/* The loop side of one context. */
struct ev {
    struct loop_watch watch; /* first: the loop hands back this pointer */
    struct store_redis_adapter *adapter;
    redisAsyncContext *ac;
    bool reading, want_write, dead;
    struct ev *next; /* the adapter's live list, or its graveyard */
};

struct store_redis_adapter {
    struct loop *loop;
    struct ev *live;      /* attached, context not freed */
    struct ev *graveyard; /* context freed; watch freed at the next flush */
};

static void ev_update(struct ev *e, bool write)
{
    uint32_t want = (e->reading ? EPOLLIN : 0) | (write ? EPOLLOUT : 0);
    loop_watch(e->adapter->loop, &e->watch, want);
}

static void ev_add_read(void *p)
{
    struct ev *e = p;
    e->reading = true;
    ev_update(e, (e->watch.events & EPOLLOUT) != 0);
}

static void ev_del_read(void *p)
{
    struct ev *e = p;
    e->reading = false;
    ev_update(e, (e->watch.events & EPOLLOUT) != 0);
}

static void ev_add_write(void *p)
{
    ((struct ev *)p)->want_write = true;
}

static void ev_del_write(void *p)
{
    struct ev *e = p;
    e->want_write = false;
    if (e->watch.events & EPOLLOUT)
        ev_update(e, false);
}

static void ev_cleanup(void *p)
{
    struct ev *e = p;
    struct store_redis_adapter *a = e->adapter;

    loop_unwatch(a->loop, &e->watch);
    e->dead = true;
    for (struct ev **q = &a->live; *q != NULL; q = &(*q)->next) {
        if (*q == e) {
            *q = e->next;
            break;
        }
    }
    e->next = a->graveyard;
    a->graveyard = e;
}

static void ev_on_event(struct loop_watch *w, uint32_t events)
{
    struct ev *e = (struct ev *)w;
    if (!e->dead && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleRead(e->ac);
    if (!e->dead && (events & EPOLLOUT))
        redisAsyncHandleWrite(e->ac);
}

struct store_redis_adapter *store_redis_adapter_new(struct loop *loop)
{
    struct store_redis_adapter *a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->loop = loop;
    return a;
}

static void bury(struct store_redis_adapter *a)
{
    while (a->graveyard != NULL) {
        struct ev *e = a->graveyard;
        a->graveyard = e->next;
        free(e);
    }
}

void store_redis_adapter_free(struct store_redis_adapter *a)
{
    if (a == NULL)
        return;
    bury(a);
    free(a);
}

int store_redis_adapter_attach(struct store_redis_adapter *a, redisAsyncContext *ac)
{
    struct ev *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    e->adapter = a;
    e->ac = ac;
    e->watch.fd = ac->c.fd;
    e->watch.on_event = ev_on_event;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    e->next = a->live;
    a->live = e;
    return 0;
}

void store_redis_adapter_flush(struct store_redis_adapter *a)
{
    bury(a);
    for (struct ev *e = a->live, *next; e != NULL; e = next) {
        /* A failed write frees its context, whose callbacks may free the
         * next one too: a dead one is skipped, and stays allocated (in the
         * graveyard, where its next leads) until the next flush. */
        next = e->next;
        if (e->dead || !e->want_write)
            continue;
        redisAsyncHandleWrite(e->ac);
        /* Still wanting to write: the socket is full, or still connecting. */
        if (!e->dead && e->want_write)
            ev_update(e, true);
    }
}
