/* test_addr_limit.c - per-address connection counts: the limit, IPv4 and
 * IPv6 kept apart, and the table against a simple model under a long run
 * of random opens and closes (backward-shift deletion must keep every
 * address findable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/addr_limit.h"

static struct sockaddr_in v4(uint32_t host)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1234)};
    a.sin_addr.s_addr = htonl(host);
    return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_limit(void **state)
{
    (void)state;
    struct addr_limit *l = addr_limit_new(100, 3);
    struct sockaddr_in a = v4(0x7f000001), b = v4(0x7f000002);

    assert_non_null(l);
    for (int i = 0; i < 3; i++)
        assert_true(addr_limit_take(l, SA(a)));
    assert_false(addr_limit_take(l, SA(a)));
    assert_int_equal(addr_limit_count(l, SA(a)), 3);
    assert_true(addr_limit_take(l, SA(b))); /* another address is not held back */
    /* The port is not part of the address. */
    a.sin_port = htons(9);
    assert_false(addr_limit_take(l, SA(a)));
    addr_limit_release(l, SA(a));
    assert_int_equal(addr_limit_count(l, SA(a)), 2);
    assert_true(addr_limit_take(l, SA(a)));
    addr_limit_free(l);
    addr_limit_free(NULL);
}

static void test_families(void **state)
{
    (void)state;
    struct addr_limit *l = addr_limit_new(10, 1);
    struct sockaddr_in a4 = v4(0x7f000001);
    struct sockaddr_in6 loop6 = {.sin6_family = AF_INET6}, mapped = {.sin6_family = AF_INET6};

    loop6.sin6_addr = in6addr_loopback;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr), 1);
    assert_true(addr_limit_take(l, SA(a4)));
    /* 127.0.0.1 over IPv4 and as an IPv4-mapped IPv6 address is one client. */
    assert_false(addr_limit_take(l, SA(mapped)));
    assert_true(addr_limit_take(l, SA(loop6)));
    assert_false(addr_limit_take(l, SA(loop6)));
    addr_limit_free(l);
}

/* Random opens and closes over a small address space (so probe runs collide
 * and wrap), checked against plain counts after every step. */
static void test_against_model(void **state)
{
    (void)state;
    enum { ADDRS = 300, STEPS = 200000, CAP = 400 };
    static unsigned model[ADDRS];
    struct addr_limit *l = addr_limit_new(CAP, 1000000);
    unsigned open = 0;

    srand(7);
    memset(model, 0, sizeof(model));
    for (int step = 0; step < STEPS; step++) {
        unsigned i = (unsigned)rand() % ADDRS;
        struct sockaddr_in a = v4(0x0a000000u + i * 7919u);
        if ((rand() & 1) && model[i] > 0) {
            addr_limit_release(l, SA(a));
            model[i]--;
            open--;
        } else if (open < CAP) {
            assert_true(addr_limit_take(l, SA(a)));
            model[i]++;
            open++;
        }
        if (step % 997 == 0) {
            for (unsigned j = 0; j < ADDRS; j++) {
                struct sockaddr_in b = v4(0x0a000000u + j * 7919u);
                assert_int_equal(addr_limit_count(l, SA(b)), model[j]);
            }
        }
    }
    addr_limit_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
