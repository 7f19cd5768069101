/* test_route_check.c - GET /v1/check in lookup mode (?jti=&sub=&iat=&iss=),
 * for the answers it gives before it asks the store.
 *
 * Regression test: check_lookup() once decoded the iat parameter into a
 * 24-byte buffer with a bound of 257, so an iat of 24 to 256 characters
 * overflowed the stack (ASan: stack-buffer-overflow). It must be answered
 * 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "revokd/router.h"

#include "unit_util.h"

static void lookup(const char *query, struct reply *rep)
{
    static struct app app; /* zeroed: the store must not be reached */
    struct request req;

    memset(&req, 0, sizeof(req));
    memset(rep, 0, sizeof(*rep));
    req.method = "GET";
    req.path = "/v1/check";
    req.body = "";
    req.query = query;
    req.app = &app;
    req.now = 1700000000;
    router_dispatch(&req, rep);
}

static void expect_400(struct reply *rep)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(rep->body, "error");
    assert_int_equal(rep->status, 400);
    assert_true(cJSON_IsString(err));
    assert_string_equal(err->valuestring, "invalid_request");
    cJSON_Delete(rep->body);
    cJSON_Delete(rep->log);
}

/* 23 characters fit in iat[24]; the value is out of range for an integer. */
static void test_iat_23_digits(void **state)
{
    (void)state;
    struct reply rep;
    char query[64] = "jti=a&sub=b&iat=";

    memset(query + strlen(query), '9', 23);
    lookup(query, &rep);
    expect_400(&rep);
}

/* 24 and more overflow iat[24]; JWT_STR_MAX (256) is the longest
 * url_decode() is allowed to write. */
static void test_iat_longer_than_buffer(void **state)
{
    (void)state;
    static const size_t lens[] = {24, 40, 100, 256};
    char query[32 + JWT_STR_MAX] = "jti=a&sub=b&iat=";
    size_t head = strlen(query);

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct reply rep;
        memset(query + head, '9', lens[i]);
        query[head + lens[i]] = '\0';
        lookup(query, &rep);
        expect_400(&rep);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iat_23_digits),
        cmocka_unit_test(test_iat_longer_than_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
