/* test_work.c - the pool that runs signature checks off the event
 * loops: every item submitted through a loop's inbox runs once on a pool
 * thread and comes back once, to that loop's thread, with what run()
 * computed; many items in bursts; one pool thread takes items first in,
 * first out; work_inbox_drain() returns only when every item's done() ran,
 * slow and resubmitted ones included; two loops sharing one pool each
 * get their own items back; and pools start, drain and stop cleanly, the
 * inbox freed right after its drain (run under valgrind or ASan too, which
 * report any leak or use of freed memory); and work_backlogged() says when
 * every pool thread has WORK_BACKLOG items waiting.
 *
 * run() executes on pool threads, where a cmocka assertion must not fire
 * (it would longjmp across threads): it only records, and the test thread
 * asserts afterwards. done() runs on the loop's thread; when that is the
 * test thread it may assert directly. Every wait is bounded (loop_poll()
 * with a timeout, under a deadline), so a lost item fails the test instead
 * of hanging it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "revokd/loop.h"
#include "revokd/work.h"

/* Generous: valgrind runs the threads one at a time, far slower. */
#define DEADLINE_MS 60000

struct ctx;

struct item {
    struct work w; /* what is submitted; the item is found from it */
    struct ctx *ctx;
    unsigned id;
    unsigned sleep_us; /* run() sleeps this long first */
    unsigned rounds;   /* done() submits the item again until it ran this often */
    /* Written by run() on a pool thread. */
    atomic_uint runs;
    unsigned run_seq; /* order in which run() took it, ctx->run_seq */
    pthread_t run_thread;
    uint64_t sum; /* computed in run() */
    bool run_on_loop_thread;
    /* Written by done() on the loop thread. */
    unsigned dones;
    unsigned runs_seen_in_done; /* runs as done() saw it */
    uint64_t sum_seen_in_done;
    pthread_t done_thread;
    bool done_on_wrong_thread;
};

struct ctx {
    struct work_pool *pool;
    struct work_inbox *inbox;
    struct loop *loop;
    pthread_t loop_thread;
    atomic_uint run_seq;
    atomic_uint total_runs;
    unsigned total_dones; /* only the loop thread touches it */
    unsigned resubmits;
};

static struct item *item_of(struct work *w)
{
    return (struct item *)((char *)w - offsetof(struct item, w));
}

/* What run() computes for item id: a sum over a few thousand numbers, so a
 * stale or mixed-up result shows. */
static uint64_t expected_sum(unsigned id)
{
    uint64_t s = 0;
    for (uint64_t k = 0; k < 2000; k++)
        s += (k * 2654435761u) ^ id;
    return s;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void item_run(struct work *w)
{
    struct item *it = item_of(w);

    if (it->sleep_us)
        sleep_us(it->sleep_us);
    it->run_seq = atomic_fetch_add(&it->ctx->run_seq, 1);
    it->run_thread = pthread_self();
    it->run_on_loop_thread = pthread_equal(it->run_thread, it->ctx->loop_thread) != 0;
    it->sum = expected_sum(it->id);
    atomic_fetch_add(&it->runs, 1);
    atomic_fetch_add(&it->ctx->total_runs, 1);
}

/* Records only, for any thread; the test thread asserts later. */
static void item_done(struct work *w)
{
    struct item *it = item_of(w);
    struct ctx *c = it->ctx;

    it->dones++;
    it->runs_seen_in_done = atomic_load(&it->runs);
    it->sum_seen_in_done = it->sum;
    it->done_thread = pthread_self();
    if (!pthread_equal(it->done_thread, c->loop_thread))
        it->done_on_wrong_thread = true;
    c->total_dones++;
    if (it->dones < it->rounds) {
        c->resubmits++;
        work_submit(c->inbox, &it->w);
    }
}

static void item_init(struct item *it, struct ctx *c, unsigned id)
{
    memset(it, 0, sizeof(*it));
    it->ctx = c;
    it->id = id;
    it->rounds = 1;
    atomic_init(&it->runs, 0);
    it->w.run = item_run;
    it->w.done = item_done;
}

/* On c's loop thread, as the server's workers do. */
static void submit(struct ctx *c, struct item *it)
{
    work_submit(c->inbox, &it->w);
}

/* A loop and its inbox on the calling thread, sharing pool. */
static void ctx_open(struct ctx *c, struct work_pool *pool)
{
    memset(c, 0, sizeof(*c));
    atomic_init(&c->run_seq, 0);
    atomic_init(&c->total_runs, 0);
    c->pool = pool;
    c->loop_thread = pthread_self();
    c->loop = loop_new();
    assert_non_null(c->loop);
    c->inbox = work_inbox_new(c->loop, pool);
    assert_non_null(c->inbox);
}

static void ctx_close(struct ctx *c)
{
    work_inbox_drain(c->inbox);
    work_inbox_free(c->inbox);
    loop_free(c->loop);
}

/* One round of c's loop: wait, and run done() of what came back. */
static int poll_once(struct ctx *c, int timeout_ms)
{
    return loop_poll(c->loop, timeout_ms);
}

/* Runs c's loop until total_dones reaches want; false at the deadline. */
static bool poll_until(struct ctx *c, unsigned want, int64_t deadline_ms)
{
    while (c->total_dones < want) {
        if (loop_now_ms() > deadline_ms)
            return false;
        if (poll_once(c, 20) < 0)
            return false;
    }
    return true;
}

/* The item came back exactly `rounds` times, ran that often on a pool
 * thread, and done() ran on the loop thread, after run(), seeing its sum. */
static void assert_item_complete(const struct ctx *c, struct item *it)
{
    assert_int_equal(atomic_load(&it->runs), it->rounds);
    assert_int_equal(it->dones, it->rounds);
    assert_int_equal(it->runs_seen_in_done, it->rounds);
    assert_false(it->run_on_loop_thread);
    assert_false(pthread_equal(it->run_thread, c->loop_thread));
    assert_false(it->done_on_wrong_thread);
    assert_true(pthread_equal(it->done_thread, c->loop_thread));
    assert_true(it->sum == expected_sum(it->id));
    assert_true(it->sum_seen_in_done == it->sum);
}

/* ---- one loop ------------------------------------------------------------ */

static void test_items_come_back_to_the_loop_thread(void **state)
{
    enum { N = 64 };
    struct work_pool *pool = work_pool_new(3);
    struct ctx c;
    struct item *items = calloc(N, sizeof(*items));
    (void)state;

    assert_non_null(pool);
    assert_non_null(items);
    ctx_open(&c, pool);
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, i);
        submit(&c, &items[i]);
        assert_ptr_equal(items[i].w.inbox, c.inbox);
    }
    assert_true(poll_until(&c, N, loop_now_ms() + DEADLINE_MS));
    assert_int_equal(c.total_dones, N);
    assert_int_equal(atomic_load(&c.total_runs), N);
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    /* Nothing more comes back: a quiet loop runs no done() again. */
    for (int k = 0; k < 3; k++)
        assert_true(poll_once(&c, 5) >= 0);
    assert_int_equal(c.total_dones, N);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(items[i].dones, 1);
    ctx_close(&c);
    work_pool_free(pool);
    free(items);
}

/* A done() that asserts, on the test thread that runs the loop. */
static void asserting_done(struct work *w)
{
    struct item *it = item_of(w);

    assert_true(pthread_equal(pthread_self(), it->ctx->loop_thread));
    assert_int_equal(atomic_load(&it->runs), 1);
    assert_true(it->sum == expected_sum(it->id));
    assert_false(pthread_equal(it->run_thread, pthread_self()));
    item_done(w);
}

static void test_done_sees_run_result(void **state)
{
    enum { N = 16 };
    struct work_pool *pool = work_pool_new(2);
    struct ctx c;
    struct item items[N];
    (void)state;

    assert_non_null(pool);
    ctx_open(&c, pool);
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, 1000 + i);
        items[i].w.done = asserting_done;
        submit(&c, &items[i]);
    }
    assert_true(poll_until(&c, N, loop_now_ms() + DEADLINE_MS));
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    ctx_close(&c);
    work_pool_free(pool);
}

static void test_many_items_in_bursts(void **state)
{
    enum { N = 10000 };
    struct work_pool *pool = work_pool_new(4);
    struct ctx c;
    struct item *items = calloc(N, sizeof(*items));
    unsigned submitted = 0, burst = 1;
    int64_t deadline;
    (void)state;

    assert_non_null(pool);
    assert_non_null(items);
    ctx_open(&c, pool);
    deadline = loop_now_ms() + DEADLINE_MS;
    while (submitted < N) {
        /* Bursts of 1 to 256 items, polling in between without waiting,
         * and now and then with a short wait: items come back while others
         * are still being submitted and run. */
        for (unsigned k = 0; k < burst && submitted < N; k++, submitted++) {
            item_init(&items[submitted], &c, submitted);
            submit(&c, &items[submitted]);
        }
        assert_true(poll_once(&c, burst % 7 == 0 ? 1 : 0) >= 0);
        assert_true(c.total_dones <= submitted);
        burst = burst * 37 % 257;
        if (burst == 0)
            burst = 1;
        assert_true(loop_now_ms() < deadline);
    }
    assert_true(poll_until(&c, N, deadline));
    assert_int_equal(c.total_dones, N);
    assert_int_equal(atomic_load(&c.total_runs), N);
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    /* run_seq numbers each run() once: all of 0 .. N-1 were taken. */
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    for (unsigned i = 0; i < N; i++) {
        assert_true(items[i].run_seq < N);
        assert_int_equal(seen[items[i].run_seq], 0);
        seen[items[i].run_seq] = 1;
    }
    free(seen);
    ctx_close(&c);
    work_pool_free(pool);
    free(items);
}

/* With one pool thread nothing overtakes: items run in the order they were
 * submitted (no request waits behind later ones). */
static void test_one_thread_runs_in_submission_order(void **state)
{
    enum { N = 200 };
    struct work_pool *pool = work_pool_new(1);
    struct ctx c;
    struct item *items = calloc(N, sizeof(*items));
    (void)state;

    assert_non_null(pool);
    assert_non_null(items);
    ctx_open(&c, pool);
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, i);
        if (i == 0)
            items[i].sleep_us = 5000; /* the rest queue up behind it */
        submit(&c, &items[i]);
    }
    assert_true(poll_until(&c, N, loop_now_ms() + DEADLINE_MS));
    for (unsigned i = 0; i < N; i++) {
        assert_item_complete(&c, &items[i]);
        assert_int_equal(items[i].run_seq, i);
        assert_true(pthread_equal(items[i].run_thread, items[0].run_thread));
    }
    ctx_close(&c);
    work_pool_free(pool);
    free(items);
}

/* ---- draining ------------------------------------------------------------ */

static void test_drain_waits_for_slow_items(void **state)
{
    enum { N = 40 };
    struct work_pool *pool = work_pool_new(2);
    struct ctx c;
    struct item items[N];
    (void)state;

    assert_non_null(pool);
    ctx_open(&c, pool);
    /* Nothing submitted: drain returns at once. */
    work_inbox_drain(c.inbox);
    assert_int_equal(c.total_dones, 0);

    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, i);
        items[i].sleep_us = 2000;
        submit(&c, &items[i]);
    }
    /* Most are still queued or sleeping: at 2 ms each on 2 threads the
     * whole batch takes about 40 ms. */
    work_inbox_drain(c.inbox);
    assert_int_equal(c.total_dones, N);
    assert_int_equal(atomic_load(&c.total_runs), N);
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    /* The eventfd may still hold a wake-up for items drain took: polling
     * must not run any done() a second time. */
    for (int k = 0; k < 3; k++)
        assert_true(poll_once(&c, 5) >= 0);
    assert_int_equal(c.total_dones, N);

    /* Again, half of them through the loop first and the rest by drain. */
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, 100 + i);
        items[i].sleep_us = i < N / 2 ? 0 : 2000;
        submit(&c, &items[i]);
    }
    assert_true(poll_until(&c, N + 1, loop_now_ms() + DEADLINE_MS));
    work_inbox_drain(c.inbox);
    assert_int_equal(c.total_dones, 2 * N);
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    ctx_close(&c);
    work_pool_free(pool);
}

static void test_resubmitting_done_and_drain(void **state)
{
    enum { N = 30, ROUNDS = 3 };
    struct work_pool *pool = work_pool_new(3);
    struct ctx c;
    struct item items[N];
    (void)state;

    assert_non_null(pool);
    ctx_open(&c, pool);

    /* Through the loop: each item goes round ROUNDS times. */
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, i);
        items[i].rounds = ROUNDS;
        submit(&c, &items[i]);
    }
    assert_true(poll_until(&c, N * ROUNDS, loop_now_ms() + DEADLINE_MS));
    assert_int_equal(c.resubmits, N * (ROUNDS - 1));
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);

    /* Through drain alone: the first round's done() submits the second;
     * drain must wait for it (and the third) too. Slow items, so the later
     * rounds are surely not back when the first done() runs. */
    c.total_dones = 0;
    c.resubmits = 0;
    atomic_store(&c.total_runs, 0);
    for (unsigned i = 0; i < N; i++) {
        item_init(&items[i], &c, 500 + i);
        items[i].rounds = ROUNDS;
        items[i].sleep_us = 2000;
        submit(&c, &items[i]);
    }
    work_inbox_drain(c.inbox);
    assert_int_equal(c.total_dones, N * ROUNDS);
    assert_int_equal(c.resubmits, N * (ROUNDS - 1));
    assert_int_equal(atomic_load(&c.total_runs), N * ROUNDS);
    for (unsigned i = 0; i < N; i++)
        assert_item_complete(&c, &items[i]);
    for (int k = 0; k < 3; k++)
        assert_true(poll_once(&c, 5) >= 0);
    assert_int_equal(c.total_dones, N * ROUNDS);
    ctx_close(&c);
    work_pool_free(pool);
}

/* ---- two loops, one pool -------------------------------------------------- */

enum { LOOPS = 2, PER_LOOP = 3000, SLOW_PER_LOOP = 20 };

struct loop_thread {
    struct work_pool *pool;
    pthread_barrier_t *start;
    unsigned index;
    struct ctx c;
    struct item *items;
    bool ok;          /* every wait finished in time */
    unsigned wrong;   /* items whose done() ran elsewhere, or not once */
};

static void *loop_thread_main(void *arg)
{
    struct loop_thread *t = arg;
    struct ctx *c = &t->c;
    int64_t deadline;

    /* ctx_open() asserts only on allocation failure; treat that as failing
     * this loop rather than asserting off the test thread. */
    memset(c, 0, sizeof(*c));
    atomic_init(&c->run_seq, 0);
    atomic_init(&c->total_runs, 0);
    c->pool = t->pool;
    c->loop_thread = pthread_self();
    c->loop = loop_new();
    c->inbox = c->loop ? work_inbox_new(c->loop, t->pool) : NULL;
    pthread_barrier_wait(t->start);
    if (c->inbox == NULL)
        return NULL;

    deadline = loop_now_ms() + DEADLINE_MS;
    /* Submit in bursts, interleaved with the other loop's submissions. */
    for (unsigned i = 0; i < PER_LOOP; i++) {
        item_init(&t->items[i], c, t->index * 1000000 + i);
        submit(c, &t->items[i]);
        if (i % 64 == 63 && poll_once(c, 0) < 0)
            return NULL;
    }
    if (!poll_until(c, PER_LOOP, deadline))
        return NULL;
    /* Then slow ones, taken back by drain alone. */
    for (unsigned i = PER_LOOP; i < PER_LOOP + SLOW_PER_LOOP; i++) {
        item_init(&t->items[i], c, t->index * 1000000 + i);
        t->items[i].sleep_us = 2000;
        submit(c, &t->items[i]);
    }
    work_inbox_drain(c->inbox);
    t->ok = c->total_dones == PER_LOOP + SLOW_PER_LOOP;
    for (unsigned i = 0; i < PER_LOOP + SLOW_PER_LOOP; i++) {
        struct item *it = &t->items[i];
        if (it->dones != 1 || it->done_on_wrong_thread || it->ctx != c)
            t->wrong++;
    }
    return NULL;
}

static void test_two_loops_share_one_pool(void **state)
{
    struct work_pool *pool = work_pool_new(3);
    struct loop_thread threads[LOOPS];
    pthread_t tids[LOOPS];
    pthread_barrier_t start;
    (void)state;

    assert_non_null(pool);
    assert_int_equal(pthread_barrier_init(&start, NULL, LOOPS), 0);
    for (unsigned k = 0; k < LOOPS; k++) {
        memset(&threads[k], 0, sizeof(threads[k]));
        threads[k].pool = pool;
        threads[k].start = &start;
        threads[k].index = k;
        threads[k].items = calloc(PER_LOOP + SLOW_PER_LOOP, sizeof(struct item));
        assert_non_null(threads[k].items);
    }
    for (unsigned k = 0; k < LOOPS; k++)
        assert_int_equal(pthread_create(&tids[k], NULL, loop_thread_main, &threads[k]), 0);
    for (unsigned k = 0; k < LOOPS; k++)
        assert_int_equal(pthread_join(tids[k], NULL), 0);

    for (unsigned k = 0; k < LOOPS; k++) {
        struct loop_thread *t = &threads[k];
        assert_non_null(t->c.inbox);
        assert_true(t->ok);
        assert_int_equal(t->wrong, 0);
        assert_int_equal(t->c.total_dones, PER_LOOP + SLOW_PER_LOOP);
        assert_int_equal(atomic_load(&t->c.total_runs), PER_LOOP + SLOW_PER_LOOP);
        for (unsigned i = 0; i < PER_LOOP + SLOW_PER_LOOP; i++) {
            struct item *it = &t->items[i];
            assert_item_complete(&t->c, it);
            assert_ptr_equal(it->w.inbox, t->c.inbox);
            /* Not the other loop's thread either. */
            for (unsigned o = 0; o < LOOPS; o++)
                if (o != k)
                    assert_false(pthread_equal(it->done_thread, threads[o].c.loop_thread));
        }
    }
    for (unsigned k = 0; k < LOOPS; k++) {
        work_inbox_free(threads[k].c.inbox);
        loop_free(threads[k].c.loop);
        free(threads[k].items);
    }
    pthread_barrier_destroy(&start);
    work_pool_free(pool);
}

/* ---- starting and stopping ----------------------------------------------- */

static void test_pool_lifecycle(void **state)
{
    (void)state;

    work_pool_free(NULL);
    /* A pool that never got work stops at once. */
    for (unsigned n = 1; n <= 8; n *= 2) {
        struct work_pool *pool = work_pool_new(n);
        assert_non_null(pool);
        work_pool_free(pool);
    }
    /* Pools of several sizes: submit, drain, free the inbox, free the pool;
     * the threads are joined and nothing leaks (valgrind checks that). */
    for (unsigned n = 1; n <= 8; n++) {
        enum { N = 50 };
        struct work_pool *pool = work_pool_new(n);
        struct ctx c;
        struct item items[N];

        assert_non_null(pool);
        ctx_open(&c, pool);
        for (unsigned i = 0; i < N; i++) {
            item_init(&items[i], &c, i);
            items[i].sleep_us = i % 10 == 0 ? 1000 : 0;
            submit(&c, &items[i]);
        }
        if (n % 2 == 0) /* some through the loop first */
            assert_true(poll_once(&c, 1) >= 0);
        work_inbox_drain(c.inbox);
        assert_int_equal(c.total_dones, N);
        for (unsigned i = 0; i < N; i++)
            assert_item_complete(&c, &items[i]);
        work_inbox_free(c.inbox);
        loop_free(c.loop);
        work_pool_free(pool);
    }
}

/* The server's shutdown order, many times over: the last item comes back,
 * drain returns, and the inbox is freed at once while the pool thread that
 * handed the item back may still be finishing with the inbox. Nothing of
 * the inbox may be touched after the item is back (valgrind and ASan
 * report a read of freed memory otherwise). */
static void test_free_inbox_right_after_drain(void **state)
{
    struct work_pool *pool = work_pool_new(2);
    (void)state;

    assert_non_null(pool);
    for (unsigned round = 0; round < 10000; round++) {
        struct ctx c;
        struct item it;

        ctx_open(&c, pool);
        item_init(&it, &c, round);
        submit(&c, &it);
        work_inbox_drain(c.inbox);
        assert_int_equal(c.total_dones, 1);
        assert_item_complete(&c, &it);
        work_inbox_free(c.inbox);
        loop_free(c.loop);
    }
    work_pool_free(pool);
}

/* ---- backlog --------------------------------------------------------------- */

static atomic_bool gate_started, gate_open;

/* Holds its pool thread until the test opens the gate (bounded). */
static void gated_run(struct work *w)
{
    atomic_store(&gate_started, true);
    for (int i = 0; i < DEADLINE_MS && !atomic_load(&gate_open); i++)
        sleep_us(1000);
    item_run(w);
}

/* work_backlogged() is true exactly while every pool thread is busy and
 * WORK_BACKLOG items per thread wait behind them: the loops' cue to verify
 * themselves. */
static void test_backlogged_while_every_thread_has_waiting_items(void **state)
{
    struct work_pool *pool = work_pool_new(1);
    struct ctx c;
    struct item busy, waiting[WORK_BACKLOG];
    (void)state;

    assert_non_null(pool);
    ctx_open(&c, pool);
    atomic_store(&gate_started, false);
    atomic_store(&gate_open, false);
    assert_false(work_backlogged(c.inbox));
    item_init(&busy, &c, 1);
    busy.w.run = gated_run;
    submit(&c, &busy);
    for (int i = 0; i < DEADLINE_MS && !atomic_load(&gate_started); i++)
        sleep_us(1000);
    assert_true(atomic_load(&gate_started));
    for (int i = 0; i < WORK_BACKLOG; i++) {
        assert_false(work_backlogged(c.inbox)); /* the one thread is busy, i items wait */
        item_init(&waiting[i], &c, 2 + i);
        submit(&c, &waiting[i]);
    }
    assert_true(work_backlogged(c.inbox));
    atomic_store(&gate_open, true);
    assert_true(poll_until(&c, 1 + WORK_BACKLOG, loop_now_ms() + DEADLINE_MS));
    assert_false(work_backlogged(c.inbox));
    assert_item_complete(&c, &busy);
    for (int i = 0; i < WORK_BACKLOG; i++)
        assert_item_complete(&c, &waiting[i]);
    ctx_close(&c);
    work_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_come_back_to_the_loop_thread),
        cmocka_unit_test(test_done_sees_run_result),
        cmocka_unit_test(test_many_items_in_bursts),
        cmocka_unit_test(test_one_thread_runs_in_submission_order),
        cmocka_unit_test(test_drain_waits_for_slow_items),
        cmocka_unit_test(test_resubmitting_done_and_drain),
        cmocka_unit_test(test_two_loops_share_one_pool),
        cmocka_unit_test(test_pool_lifecycle),
        cmocka_unit_test(test_free_inbox_right_after_drain),
        cmocka_unit_test(test_backlogged_while_every_thread_has_waiting_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
