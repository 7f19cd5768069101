/* test_store_set.c - the in-memory revocation table: a jti until its time,
 * a cutoff that only moves forward, records past their time never
 * reported, sweeping and growing that lose no record (checked against a
 * plain list over thousands of random operations), the max, and what a
 * record costs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/store_set.h"

#define NOW 1800000000

static void digest(unsigned char d[STORE_KEY_DIGEST_BYTES], const char *id)
{
    store_key_digest(d, "https://issuer.set.test", id);
}

/* Takes the table to s's next size when it is full, as the stores do. */
static int room(struct store_set *s, int64_t now)
{
    if (!store_set_full(s))
        return 0;
    struct store_set *g = store_set_grown(s, now);
    if (g == NULL)
        return -1;
    store_set_swap(s, g);
    store_set_free(g);
    return 0;
}

static void test_jti_until_its_time(void **state)
{
    (void)state;
    struct store_set *s = store_set_new(100);
    unsigned char a[STORE_KEY_DIGEST_BYTES], b[STORE_KEY_DIGEST_BYTES];

    assert_non_null(s);
    digest(a, "a");
    digest(b, "b");
    assert_false(store_set_is_revoked(s, a, NULL, NOW, NOW));
    assert_int_equal(store_set_revoke_jti(s, a, NOW + 10, NOW), 0);
    assert_true(store_set_is_revoked(s, a, NULL, NOW, NOW));
    assert_true(store_set_is_revoked(s, a, NULL, NOW, NOW + 9));
    assert_false(store_set_is_revoked(s, a, NULL, NOW, NOW + 10)); /* its time has come */
    assert_false(store_set_is_revoked(s, b, NULL, NOW, NOW));
    /* A later time wins; an earlier one changes nothing. */
    assert_int_equal(store_set_revoke_jti(s, a, NOW + 20, NOW), 0);
    assert_int_equal(store_set_revoke_jti(s, a, NOW + 5, NOW), 1);
    assert_int_equal(store_set_revoke_jti(s, a, NOW + 20, NOW), 1);
    assert_true(store_set_is_revoked(s, a, NULL, NOW, NOW + 19));
    /* Dead already: nothing kept. */
    assert_int_equal(store_set_revoke_jti(s, b, NOW, NOW), 1);
    struct store_set_counts c;
    store_set_counts(s, &c);
    assert_int_equal(c.jti, 1);
    assert_int_equal(c.sub, 0);
    store_set_free(s);
}

static void test_cutoff_moves_forward_only(void **state)
{
    (void)state;
    struct store_set *s = store_set_new(100);
    unsigned char j[STORE_KEY_DIGEST_BYTES], sub[STORE_KEY_DIGEST_BYTES];
    int64_t in_force = 0;

    digest(j, "token-1");
    digest(sub, "alice");
    assert_int_equal(store_set_revoke_all(s, sub, NOW, NOW + 100, NOW, &in_force), 0);
    assert_int_equal(in_force, NOW);
    assert_true(store_set_is_revoked(s, j, sub, NOW, NOW));      /* issued at the cutoff */
    assert_true(store_set_is_revoked(s, j, sub, NOW - 50, NOW));
    assert_false(store_set_is_revoked(s, j, sub, NOW + 1, NOW)); /* issued after it */
    assert_false(store_set_is_revoked(s, j, NULL, NOW, NOW));    /* a token without sub */
    assert_int_equal(store_set_revoke_all(s, sub, NOW - 30, NOW + 500, NOW, &in_force), 1);
    assert_int_equal(in_force, NOW); /* never back, and nothing changed: not its time either */
    assert_false(store_set_is_revoked(s, j, sub, NOW, NOW + 100));
    assert_int_equal(store_set_revoke_all(s, sub, NOW, NOW + 100, NOW, &in_force), 1);
    assert_int_equal(store_set_revoke_all(s, sub, NOW + 30, NOW + 100, NOW, &in_force), 0);
    assert_int_equal(in_force, NOW + 30);
    assert_false(store_set_is_revoked(s, j, sub, NOW, NOW + 100)); /* the record's time has come */
    /* A record past its time counts as none: an older cutoff is taken. */
    assert_int_equal(store_set_revoke_all(s, sub, NOW - 10, NOW + 300, NOW + 200, &in_force), 0);
    assert_int_equal(in_force, NOW - 10);
    /* A jti and a subject of the same name are different records. */
    unsigned char same[STORE_KEY_DIGEST_BYTES];
    digest(same, "alice");
    assert_false(store_set_is_revoked(s, same, NULL, NOW, NOW + 200));
    store_set_free(s);
}

/* Thousands of random revocations, times, sweeps and growths against a
 * plain list: the table answers as the list does for every id. */
#define IDS 3000

static void test_against_a_list(void **state)
{
    (void)state;
    static int64_t until[IDS], cutoff[IDS], cut_until[IDS];
    unsigned char d[IDS][STORE_KEY_DIGEST_BYTES];
    struct store_set *s = store_set_new(100000);
    int64_t now = NOW;
    unsigned seed = 12345;

    for (int i = 0; i < IDS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id-%d", i);
        digest(d[i], id);
        until[i] = cut_until[i] = INT64_MIN;
        cutoff[i] = INT64_MIN;
    }
    for (int step = 0; step < 40000; step++) {
        int i = (int)(rand_r(&seed) % IDS), op = (int)(rand_r(&seed) % 10);
        if (op < 4) {
            int64_t t = now + (int64_t)(rand_r(&seed) % 200) - 20;
            assert_int_equal(room(s, now), 0);
            int rc = store_set_revoke_jti(s, d[i], t, now);
            bool changed = t > now && until[i] < t;
            assert_int_equal(rc, changed ? 0 : 1);
            if (changed)
                until[i] = t;
        } else if (op < 6) {
            int64_t c = now + (int64_t)(rand_r(&seed) % 50) - 25, t = now + (int64_t)(rand_r(&seed) % 200);
            int64_t got;
            assert_int_equal(room(s, now), 0);
            bool moved = cut_until[i] <= now || cutoff[i] < c;
            assert_int_equal(store_set_revoke_all(s, d[i], c, t, now, &got), moved ? 0 : 1);
            if (moved) {
                cutoff[i] = c;
                if (cut_until[i] < t)
                    cut_until[i] = t;
            }
            assert_int_equal(got, cutoff[i]);
        } else if (op < 8) {
            now += rand_r(&seed) % 5;
        } else {
            store_set_sweep(s, rand_r(&seed) % 700, now);
        }
        if (step % 997 == 0 || step == 39999) {
            for (int k = 0; k < IDS; k++) {
                bool jti = until[k] > now;
                int64_t iat = now - 10;
                bool cut = cut_until[k] > now && iat <= cutoff[k];
                assert_int_equal(store_set_is_revoked(s, d[k], NULL, iat, now), jti);
                assert_int_equal(store_set_is_revoked(s, d[(k + 1) % IDS], d[k], iat, now),
                                 until[(k + 1) % IDS] > now || cut);
            }
        }
    }
    /* A full sweep leaves only the records in force. */
    store_set_sweep(s, SIZE_MAX, now);
    struct store_set_counts c;
    store_set_counts(s, &c);
    size_t jti = 0, sub = 0;
    for (int k = 0; k < IDS; k++) {
        jti += until[k] > now;
        sub += cut_until[k] > now;
    }
    assert_int_equal(c.jti, jti);
    assert_int_equal(c.sub, sub);
    store_set_free(s);
}

/* The max holds: growing stops where max records fit, and a new record is
 * then refused while an existing one may still be updated. */
static void test_max(void **state)
{
    (void)state;
    struct store_set *s = store_set_new(100);
    unsigned char d[STORE_KEY_DIGEST_BYTES];
    int i = 0;

    for (;; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m-%d", i);
        digest(d, id);
        if (room(s, NOW) < 0 || store_set_revoke_jti(s, d, NOW + 60, NOW) < 0)
            break;
    }
    assert_int_equal(i, 100);
    assert_true(store_set_full(s));
    assert_null(store_set_grown(s, NOW));
    digest(d, "m-7");
    assert_int_equal(store_set_revoke_jti(s, d, NOW + 90, NOW), 0);
    digest(d, "m-100");
    assert_int_equal(store_set_revoke_jti(s, d, NOW + 60, NOW), -1);
    /* Once records expire and are swept, there is room again. */
    assert_int_equal(store_set_sweep(s, SIZE_MAX, NOW + 60), 99);
    assert_false(store_set_full(s));
    assert_int_equal(store_set_revoke_jti(s, d, NOW + 120, NOW + 60), 0);
    store_set_clear(s);
    struct store_set_counts c;
    store_set_counts(s, &c);
    assert_int_equal(c.jti + c.sub, 0);
    store_set_free(s);
}

/* 100,000 records take 32 bytes a slot, at a load between 3/8 and 3/4. */
static void test_bytes_per_record(void **state)
{
    (void)state;
    struct store_set *s = store_set_new(10000000);
    unsigned char d[STORE_KEY_DIGEST_BYTES];
    struct store_set_counts c;

    for (int i = 0; i < 100000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "b-%d", i);
        digest(d, id);
        assert_int_equal(room(s, NOW), 0);
        assert_int_equal(store_set_revoke_jti(s, d, NOW + 60, NOW), 0);
    }
    store_set_counts(s, &c);
    assert_int_equal(c.jti, 100000);
    assert_int_equal(c.slots, 262144); /* 131,072 slots hold 98,304 at most */
    assert_true(c.bytes >= c.slots * 32 && c.bytes < c.slots * 32 + 256);
    print_message("100000 records: %zu slots, %zu bytes, %.1f bytes a record\n", c.slots, c.bytes,
                  (double)c.bytes / 100000);
    store_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jti_until_its_time),
        cmocka_unit_test(test_cutoff_moves_forward_only),
        cmocka_unit_test(test_against_a_list),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_bytes_per_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
