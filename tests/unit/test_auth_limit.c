/* test_auth_limit.c - failed authentication per address: a burst, then a
 * refill at the set rate; other addresses untouched; a bounded table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "revokd/auth_limit.h"

static struct sockaddr_in v4(uint32_t host)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(host);
    return a;
}

#define SA(a) ((const struct sockaddr *)&(a))

static void test_burst_then_refill(void **state)
{
    (void)state;
    struct auth_limit *l = auth_limit_new(3, 6); /* 3 tries, then one every 10 s */
    struct sockaddr_in a = v4(0x7f000002), b = v4(0x7f000003);

    assert_non_null(l);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(auth_limit_check(l, SA(a), 1000), 0);
        auth_limit_failed(l, SA(a), 1000);
    }
    assert_int_equal(auth_limit_check(l, SA(a), 1000), 10);
    assert_int_equal(auth_limit_check(l, SA(b), 1000), 0); /* others are not slowed */
    assert_int_equal(auth_limit_check(l, SA(a), 6000), 5);
    assert_int_equal(auth_limit_check(l, SA(a), 11000), 0);
    auth_limit_failed(l, SA(a), 11000);
    assert_true(auth_limit_check(l, SA(a), 11000) > 0);
    /* A long quiet time gives the whole burst back, never more. */
    for (int i = 0; i < 3; i++)
        auth_limit_failed(l, SA(a), 10000000);
    assert_true(auth_limit_check(l, SA(a), 10000000) > 0);
    auth_limit_free(l);
}

static void test_ipv6_and_many_addresses(void **state)
{
    (void)state;
    struct auth_limit *l = auth_limit_new(1, 1);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};

    inet_pton(AF_INET6, "2001:db8::1", &six.sin6_addr);
    auth_limit_failed(l, SA(six), 0);
    assert_true(auth_limit_check(l, SA(six), 0) > 0);
    /* A flood of addresses cannot grow the table; it may evict, never crash. */
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in a = v4(0x0a000000 + i);
        auth_limit_failed(l, SA(a), 0);
    }
    struct sockaddr_in last = v4(0x0a000000 + 99999);
    assert_true(auth_limit_check(l, SA(last), 0) > 0);
    assert_int_equal(auth_limit_check(NULL, SA(last), 0), 0);
    auth_limit_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_ipv6_and_many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
