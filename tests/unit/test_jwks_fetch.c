/* test_jwks_fetch.c - reading a discovery document: the issuer it names
 * must be the one asked about, its jwks_uri fetchable and short enough to
 * keep, and every refusal says why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/jwks_fetch.h"
#include "unit_util.h"

#define ISS "https://id.example"

static int parse(const char *doc, char *uri, size_t size, char *err, size_t errlen)
{
    err[0] = '\0';
    return jwks_fetch_parse_discovery(doc, strlen(doc), ISS, uri, size, err, errlen);
}

static void test_discovery(void **state)
{
    (void)state;
    char uri[2304], err[256];

    assert_int_equal(parse("{\"issuer\":\"" ISS "\",\"jwks_uri\":\"" ISS "/keys\"}", uri, sizeof(uri), err,
                           sizeof(err)),
                     0);
    assert_string_equal(uri, ISS "/keys");

    assert_int_equal(parse("{\"issuer\":\"https://other.example\",\"jwks_uri\":\"" ISS "/keys\"}", uri,
                           sizeof(uri), err, sizeof(err)),
                     -1);
    unit_expect_contains(err, "names issuer \"https://other.example\"");
    assert_int_equal(parse("{\"issuer\":\"" ISS "\",\"jwks_uri\":\"http://id.example/keys\"}", uri,
                           sizeof(uri), err, sizeof(err)),
                     -1);
    unit_expect_contains(err, "must be https");
    assert_int_equal(parse("{\"issuer\":\"" ISS "\"}", uri, sizeof(uri), err, sizeof(err)), -1);
    unit_expect_contains(err, "no issuer and jwks_uri strings");

    /* A jwks_uri that fits no buffer is refused, and says so. */
    size_t long_len = sizeof(uri) + 100;
    char *doc = malloc(long_len + 100);
    assert_non_null(doc);
    int n = snprintf(doc, long_len + 100, "{\"issuer\":\"" ISS "\",\"jwks_uri\":\"" ISS "/");
    memset(doc + n, 'k', long_len - (size_t)n);
    snprintf(doc + long_len, 100, "\"}");
    assert_int_equal(parse(doc, uri, sizeof(uri), err, sizeof(err)), -1);
    char want[64];
    snprintf(want, sizeof(want), "jwks_uri of %zu bytes; at most %zu",
             long_len - (size_t)n + strlen(ISS "/"), sizeof(uri) - 1);
    unit_expect_contains(err, want);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
