/* work.h - threads that do CPU-heavy work off the event loops.
 *
 * An RS256 signature check costs about 15 us; done on a worker's event loop
 * it stalls every other request of that loop meanwhile, so the loops would
 * have to be as many as the cores to reach the CPU, and on a small machine
 * they then fight the load balancer's and Redis's threads for it. Instead
 * the loops stay few and hand signature checks to this pool: a loop submits
 * a work item, a pool thread runs it, and the item comes back to the loop
 * it came from, through that loop's inbox, to finish there.
 *
 * A work item is embedded in its owner, so submitting allocates nothing. */
#ifndef REVOKD_WORK_H
#define REVOKD_WORK_H

#include <stdbool.h>

struct loop;
struct work_pool;
struct work_inbox;

struct work {
    void (*run)(struct work *w);  /* on a pool thread */
    void (*done)(struct work *w); /* then on the submitting loop's thread */
    struct work_inbox *inbox;     /* set by work_submit */
    struct work *next;            /* the pool's queue, then the inbox */
};

/* threads pool threads; NULL when they cannot be started. */
struct work_pool *work_pool_new(unsigned threads);
/* Stops and joins the threads. Every inbox must be drained first. */
void work_pool_free(struct work_pool *p);

/* The inbox of one loop's thread, for work it gives p: finished work comes
 * back through an eventfd watched by l, and done() runs inside
 * loop_poll(). */
struct work_inbox *work_inbox_new(struct loop *l, struct work_pool *p);
/* Waits for every item submitted through inbox to come back and runs its
 * done(): nothing of the loop may still be in a pool thread's hands when
 * the loop stops. */
void work_inbox_drain(struct work_inbox *inbox);
/* Frees a drained inbox. */
void work_inbox_free(struct work_inbox *inbox);

/* Queues w (w->run and w->done set) in the inbox's pool; on the inbox's
 * loop thread. */
void work_submit(struct work_inbox *inbox, struct work *w);

/* Items queued per pool thread, beyond the ones running, before the pool
 * counts as backlogged. A pool thread whose queue runs dry sleeps, and
 * waking it costs a system call and a switch on both sides: with one item
 * of slack per thread, a flood of uncached RS256 tokens on 2 cores was
 * checked at 34,000-41,000/s, with four at 37,000-46,000/s (2-19% more in
 * runs side by side), the cores then fully busy. A token waits
 * behind at most this many others (about 17 us each for RS256). */
#define WORK_BACKLOG 4

/* Every pool thread has WORK_BACKLOG items waiting behind the one it is
 * running: a new item would only queue, and the loop may as well do it
 * itself. */
bool work_backlogged(const struct work_inbox *inbox);

#endif
