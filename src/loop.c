/* loop.c - a thin epoll loop with timers; see loop.h. */
#include "revokd/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 128

struct loop {
    int epfd;
    struct loop_timer *timers; /* armed, soonest first */
    struct loop_hook *hooks;
    uint64_t round;            /* loop_poll() calls so far */
    bool woken;                /* loop_wake(): the next wait does not sleep */
};

struct loop *loop_new(void)
{
    struct loop *l = malloc(sizeof(*l));
    if (l == NULL)
        return NULL;
    if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        free(l);
        return NULL;
    }
    l->timers = NULL;
    l->hooks = NULL;
    l->round = 0;
    l->woken = false;
    return l;
}

void loop_free(struct loop *l)
{
    if (l == NULL)
        return;
    close(l->epfd);
    free(l);
}

int loop_watch(struct loop *l, struct loop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};

    if (w->added && w->events == events)
        return 0;
    if (epoll_ctl(l->epfd, w->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) < 0)
        return -1;
    w->added = true;
    w->events = events;
    return 0;
}

void loop_unwatch(struct loop *l, struct loop_watch *w)
{
    if (w->added)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->added = false;
    w->events = 0;
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
    if (!t->armed)
        return;
    for (struct loop_timer **p = &l->timers; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    t->armed = false;
}

/* A loop has a handful of timers, so a sorted list is all it takes. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t after_ms)
{
    struct loop_timer **p = &l->timers;

    loop_timer_disarm(l, t);
    t->when_ms = loop_now_ms() + after_ms;
    t->round = l->round;
    while (*p != NULL && (*p)->when_ms <= t->when_ms)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    t->armed = true;
}

void loop_hook_add(struct loop *l, struct loop_hook *h)
{
    struct loop_hook **p = &l->hooks;
    while (*p != NULL)
        p = &(*p)->next;
    h->next = NULL;
    *p = h;
}

void loop_hook_remove(struct loop *l, struct loop_hook *h)
{
    for (struct loop_hook **p = &l->hooks; *p != NULL; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            return;
        }
    }
}

void loop_wake(struct loop *l)
{
    l->woken = true;
}

int loop_poll(struct loop *l, int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n;

    for (struct loop_hook *h = l->hooks; h != NULL; h = h->next)
        h->before_sleep(h);
    if (l->woken)
        timeout_ms = 0;
    l->woken = false;
    if (l->timers != NULL) {
        int64_t due = l->timers->when_ms - loop_now_ms();
        if (due < 0)
            due = 0;
        if (timeout_ms < 0 || due < timeout_ms)
            timeout_ms = (int)due;
    }
    l->round++;
    n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -1;
    for (int i = 0; i < n; i++) {
        struct loop_watch *w = evs[i].data.ptr;
        w->on_event(w, evs[i].events);
    }
    /* One due timer at a time, since a callback may disarm or re-arm any
     * timer; one armed during this round waits for the next, however soon
     * it is due. */
    int64_t now = loop_now_ms();
    while (l->timers != NULL && l->timers->when_ms <= now && l->timers->round < l->round) {
        struct loop_timer *t = l->timers;
        l->timers = t->next;
        t->armed = false;
        t->on_timer(t);
    }
    return n < 0 ? 0 : n;
}

void loop_eventfd_signal(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the count is at its most, and the loop wakes anyway */
    }
}

void loop_eventfd_take(int fd)
{
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: an earlier round took the count */
    }
}

void loop_eventfd_on_event(struct loop_watch *w, uint32_t events)
{
    (void)events;
    loop_eventfd_take(w->fd);
}

int64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t loop_now_ms(void)
{
    return loop_now_ns() / 1000000;
}
