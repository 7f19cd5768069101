/* test_loop.c - the loop's timers: order, disarming, re-arming from a
 * callback (which waits for the next round), and loop_poll() waking for the
 * soonest timer rather than sleeping its whole timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "revokd/loop.h"

struct probe {
    struct loop_timer timer; /* first: the callback finds the probe from it */
    struct loop *loop;
    int fired;
    int order;      /* when it fired, among all probes */
    int64_t rearm;  /* >= 0: arm again this many ms from the callback */
};

static int fired_so_far;

static void on_timer(struct loop_timer *t)
{
    struct probe *p = (struct probe *)t;
    p->fired++;
    p->order = ++fired_so_far;
    if (p->rearm >= 0)
        loop_timer_arm(p->loop, &p->timer, p->rearm);
}

static void probe_init(struct probe *p, struct loop *l)
{
    memset(p, 0, sizeof(*p));
    p->timer.on_timer = on_timer;
    p->loop = l;
    p->rearm = -1;
}

static void test_order_and_disarm(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    struct probe a, b, c;

    fired_so_far = 0;
    probe_init(&a, l);
    probe_init(&b, l);
    probe_init(&c, l);
    loop_timer_arm(l, &b.timer, 20);
    loop_timer_arm(l, &a.timer, 5);
    loop_timer_arm(l, &c.timer, 10);
    loop_timer_disarm(l, &c.timer);
    assert_false(c.timer.armed);
    loop_timer_disarm(l, &c.timer); /* twice is harmless */
    int64_t start = loop_now_ms();
    while (a.fired + b.fired < 2 && loop_now_ms() - start < 2000)
        loop_poll(l, 1000);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(c.fired, 0);
    assert_int_equal(a.order, 1);
    assert_int_equal(b.order, 2);
    /* Woken by the timers, not by the 1000 ms timeout. */
    assert_true(loop_now_ms() - start < 500);
    loop_free(l);
}

static void test_rearm_waits_for_the_next_round(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    struct probe p;

    probe_init(&p, l);
    p.rearm = 0; /* due at once again, from its own callback */
    loop_timer_arm(l, &p.timer, 0);
    loop_poll(l, 0);
    assert_int_equal(p.fired, 1); /* not a second time in the same round */
    assert_true(p.timer.armed);
    loop_poll(l, 0);
    assert_int_equal(p.fired, 2);
    p.rearm = -1;
    loop_poll(l, 0);
    assert_int_equal(p.fired, 3);
    assert_false(p.timer.armed);
    loop_poll(l, 0);
    assert_int_equal(p.fired, 3);
    loop_free(l);
}

static void test_moving_an_armed_timer(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    struct probe p;

    probe_init(&p, l);
    loop_timer_arm(l, &p.timer, 10000);
    loop_timer_arm(l, &p.timer, 0); /* moved, not added twice */
    loop_poll(l, 50);
    assert_int_equal(p.fired, 1);
    loop_poll(l, 0);
    assert_int_equal(p.fired, 1);
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_disarm),
        cmocka_unit_test(test_rearm_waits_for_the_next_round),
        cmocka_unit_test(test_moving_an_armed_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
