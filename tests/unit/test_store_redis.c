/* test_store_redis.c - the bound on the replies revokd reads from Redis and
 * the Sentinels: an array longer than STORE_REDIS_MAX_ELEMENTS fails the
 * reader before hiredis allocates for it, one at the bound is read whole,
 * and other replies read as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../../src/store_redis_internal.h"

static redisReader *bounded(void)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    store_redis_bound_reader(r);
    return r;
}

static void huge_array_fails_before_allocating(void **state)
{
    (void)state;
    /* 767,225,700 element pointers would be 6 GB: the reader must refuse
     * on the header alone (ASan or valgrind would notice such a request). */
    redisReader *r = bounded();
    void *reply = NULL;
    const char in[] = "*767225700\r\n";

    assert_int_equal(redisReaderFeed(r, in, sizeof(in) - 1), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r);

    /* One over the bound, inside another array, fails the same way. */
    r = bounded();
    char nested[64];
    int n = snprintf(nested, sizeof(nested), "*2\r\n:1\r\n*%d\r\n", STORE_REDIS_MAX_ELEMENTS + 1);
    assert_int_equal(redisReaderFeed(r, nested, (size_t)n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r);
}

static void array_at_the_bound_is_read(void **state)
{
    (void)state;
    redisReader *r = bounded();
    size_t size = 32 + 4 * STORE_REDIS_MAX_ELEMENTS;
    char *in = malloc(size);
    assert_non_null(in);
    size_t n = (size_t)snprintf(in, size, "*%d\r\n", STORE_REDIS_MAX_ELEMENTS);
    for (int i = 0; i < STORE_REDIS_MAX_ELEMENTS; i++)
        n += (size_t)snprintf(in + n, size - n, ":%d\r\n", i % 10);
    assert_int_equal(redisReaderFeed(r, in, n), REDIS_OK);

    redisReply *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, (void **)&reply), REDIS_OK);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, STORE_REDIS_MAX_ELEMENTS);
    assert_int_equal(reply->element[STORE_REDIS_MAX_ELEMENTS - 1]->integer, (STORE_REDIS_MAX_ELEMENTS - 1) % 10);
    freeReplyObject(reply);
    free(in);
    redisReaderFree(r);
}

static void other_replies_unchanged(void **state)
{
    (void)state;
    redisReader *r = bounded();
    const char in[] = "*3\r\n$4\r\nrole\r\n:7\r\n*-1\r\n+OK\r\n";
    redisReply *reply = NULL;

    assert_int_equal(redisReaderFeed(r, in, sizeof(in) - 1), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, (void **)&reply), REDIS_OK);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 3);
    assert_string_equal(reply->element[0]->str, "role");
    assert_int_equal(reply->element[1]->integer, 7);
    assert_int_equal(reply->element[2]->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);
    assert_int_equal(redisReaderGetReply(r, (void **)&reply), REDIS_OK);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    assert_string_equal(reply->str, "OK");
    freeReplyObject(reply);
    redisReaderFree(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(huge_array_fails_before_allocating),
        cmocka_unit_test(array_at_the_bound_is_read),
        cmocka_unit_test(other_replies_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
