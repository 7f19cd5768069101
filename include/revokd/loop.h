/* loop.h - the epoll loop each worker thread runs.
 *
 * A worker serves HTTP and talks to Redis on the same thread, so that a
 * request waiting for Redis costs no thread and no lock: libmicrohttpd's and
 * hiredis's descriptors are both watched here, and a Redis reply resumes the
 * request it belongs to directly. The loop owns time, as redis's ae does:
 * modules arm timers rather than compute timeouts, and register a hook that
 * runs before each sleep (hiredis's writes of a round go out there). A round
 * is one loop_poll(): the hooks, the wait, the events, the timers due. */
#ifndef REVOKD_LOOP_H
#define REVOKD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* One watched descriptor, embedded in its owner. */
struct loop_watch {
    int fd;
    uint32_t events; /* EPOLLIN / EPOLLOUT currently asked for */
    bool added;
    void (*on_event)(struct loop_watch *w, uint32_t events);
};

/* A timer, embedded in its owner; armed, it runs once when its time comes. */
struct loop_timer {
    void (*on_timer)(struct loop_timer *t);
    bool armed;
    /* The loop's: */
    int64_t when_ms;         /* monotonic ms, while armed */
    uint64_t round;          /* the loop_poll() it was armed in */
    struct loop_timer *next; /* armed timers, soonest first */
};

/* A hook, embedded in its owner, run at the start of every loop_poll(),
 * before the loop decides how long to sleep. */
struct loop_hook {
    void (*before_sleep)(struct loop_hook *h);
    struct loop_hook *next; /* the loop's */
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watches w->fd for events (EPOLLIN, EPOLLOUT; 0 keeps it registered but
 * quiet). Returns 0 or -1. */
int loop_watch(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_unwatch(struct loop *l, struct loop_watch *w);

/* Runs t->on_timer once, in the first loop_poll() at or after after_ms from
 * now; re-arming an armed timer moves it. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t after_ms);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);

/* Runs h->before_sleep in every round from now on, after the hooks added
 * before it; until loop_hook_remove(). */
void loop_hook_add(struct loop *l, struct loop_hook *h);
void loop_hook_remove(struct loop *l, struct loop_hook *h);

/* Work is ready that no descriptor will report: this round (or, from a
 * callback of the wait, the next one) does not sleep. */
void loop_wake(struct loop *l);

/* One round: runs the hooks, waits up to timeout_ms (-1: no limit; 0 when
 * woken), or less when a timer is due sooner, runs the callbacks of the
 * descriptors that became ready, then those of the timers that are due.
 * Returns the number of events, or -1. */
int loop_poll(struct loop *l, int timeout_ms);

/* Eventfds, how another thread wakes a loop: a watch on one, whose handler
 * takes the count. loop_eventfd_signal() adds to fd's count from any
 * thread (a count already at its most wakes the loop all the same);
 * loop_eventfd_take() takes it (taken already by an earlier round is no
 * error); loop_eventfd_on_event is the handler of a watch whose wake-up is
 * all the point. */
void loop_eventfd_signal(int fd);
void loop_eventfd_take(int fd);
void loop_eventfd_on_event(struct loop_watch *w, uint32_t events);

/* Monotonic milliseconds and nanoseconds. */
int64_t loop_now_ms(void);
int64_t loop_now_ns(void);

#endif
