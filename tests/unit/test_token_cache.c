/* test_token_cache.c - the verified-token cache: keys, hits and misses,
 * expiry, replacement, FIFO eviction within capacity, the capacity counted
 * across shards, a disabled cache, and many threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "revokd/token_cache.h"

#define NOW 1700000000
#define LATER (NOW + 3600)

static void key_of(const char *token, unsigned char key[TOKEN_CACHE_KEY_SIZE])
{
    token_cache_key(token, strlen(token), key);
}

/* Writes s into a claim array, asserting that it fits. */
static void set_str(char dst[JWT_STR_MAX + 1], const char *s)
{
    assert_true(strlen(s) <= JWT_STR_MAX);
    memset(dst, 0, JWT_STR_MAX + 1);
    memcpy(dst, s, strlen(s));
}

/* Claims like jwt_verify's for a typical token: a UUID jti, numbered so that
 * no two tokens i share any string or time. */
static void claims_for(unsigned i, struct jwt_claims *c)
{
    char buf[64];

    memset(c, 0, sizeof(*c));
    snprintf(buf, sizeof(buf), "6f1c2a4e-9b7d-4c3e-8a21-%012u", i);
    set_str(c->jti, buf);
    snprintf(buf, sizeof(buf), "user-%u@example.com", i);
    set_str(c->sub, buf);
    snprintf(buf, sizeof(buf), "https://issuer-%u.example.com/", i % 7);
    set_str(c->iss, buf);
    c->has_sub = i % 3 != 0;
    c->has_iss = i % 5 != 0;
    c->jti_derived = i % 2 != 0;
    c->iat = NOW - 60 + (int64_t)i;
    c->exp = c->iat + 900;
    c->has_nbf = i % 4 == 0;
    c->nbf = c->has_nbf ? c->iat : 0;
    if (i % 2 == 0) { /* scope, client_id and aud are kept only when one is there */
        set_str(c->scope, "orders:read orders:write");
        set_str(c->client_id, i % 4 == 0 ? "web-app" : "");
        set_str(c->aud, i % 4 == 0 ? "api\nhttps://orders.example.com" : "");
    }
    c->leeway = (int64_t)(i % 4000); /* 0..3600 is what an issuer may have */
    c->issuer = -1;                  /* what a hit gives: the cache does not keep it */
}

/* Equal field by field, arrays compared whole: a hit must leave nothing of
 * what *out held before, not even past a string's NUL. */
static bool same_claims(const struct jwt_claims *a, const struct jwt_claims *b)
{
    return memcmp(a->jti, b->jti, sizeof(a->jti)) == 0 &&
           memcmp(a->sub, b->sub, sizeof(a->sub)) == 0 &&
           memcmp(a->iss, b->iss, sizeof(a->iss)) == 0 && memcmp(a->scope, b->scope, sizeof(a->scope)) == 0 &&
           memcmp(a->client_id, b->client_id, sizeof(a->client_id)) == 0 &&
           memcmp(a->aud, b->aud, sizeof(a->aud)) == 0 && a->has_sub == b->has_sub &&
           a->has_iss == b->has_iss && a->jti_derived == b->jti_derived && a->exp == b->exp &&
           a->iat == b->iat && a->nbf == b->nbf && a->has_nbf == b->has_nbf && a->leeway == b->leeway;
}

static void assert_claims_equal(const struct jwt_claims *got, const struct jwt_claims *want)
{
    assert_string_equal(got->jti, want->jti);
    assert_string_equal(got->sub, want->sub);
    assert_string_equal(got->iss, want->iss);
    assert_string_equal(got->scope, want->scope);
    assert_string_equal(got->client_id, want->client_id);
    assert_string_equal(got->aud, want->aud);
    assert_int_equal(got->has_sub, want->has_sub);
    assert_int_equal(got->has_iss, want->has_iss);
    assert_int_equal(got->jti_derived, want->jti_derived);
    assert_int_equal(got->has_nbf, want->has_nbf);
    assert_true(got->exp == want->exp);
    assert_true(got->iat == want->iat);
    assert_true(got->nbf == want->nbf);
    assert_true(got->leeway == want->leeway);
    assert_true(same_claims(got, want));
}

/* A get at now into an *out full of garbage; asserts a hit with want. */
static void expect_hit(struct token_cache *tc, const unsigned char *key, int64_t now,
                       const struct jwt_claims *want)
{
    struct jwt_claims out;

    memset(&out, 0xA5, sizeof(out));
    assert_true(token_cache_get(tc, key, now, &out));
    assert_claims_equal(&out, want);
}

/* A get at now; on a miss, asserts that *out was left alone. */
static bool hits(struct token_cache *tc, const unsigned char *key, int64_t now)
{
    struct jwt_claims out, before;

    memset(&out, 0x5A, sizeof(out));
    memcpy(&before, &out, sizeof(out));
    if (token_cache_get(tc, key, now, &out))
        return true;
    assert_memory_equal(&out, &before, sizeof(out));
    return false;
}

static void test_key_is_sha256_prefix_of_the_bytes(void **state)
{
    (void)state;
    /* FIPS 180-2 test vectors, independent of the code under test; the key
     * is their first 16 bytes. */
    static const unsigned char abc[] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const unsigned char empty[] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    unsigned char key[TOKEN_CACHE_KEY_SIZE];
    unsigned char wide[2 * TOKEN_CACHE_KEY_SIZE], canary[TOKEN_CACHE_KEY_SIZE];

    assert_int_equal(TOKEN_CACHE_KEY_SIZE, 16);
    token_cache_key("abc", 3, key);
    assert_memory_equal(key, abc, sizeof(key));
    /* len decides, not the NUL. */
    token_cache_key("abcdef", 3, key);
    assert_memory_equal(key, abc, sizeof(key));
    token_cache_key("", 0, key);
    assert_memory_equal(key, empty, sizeof(key));

    /* Exactly TOKEN_CACHE_KEY_SIZE bytes are written, not the whole digest. */
    memset(wide, 0xA5, sizeof(wide));
    memset(canary, 0xA5, sizeof(canary));
    token_cache_key("abc", 3, wide);
    assert_memory_equal(wide, abc, TOKEN_CACHE_KEY_SIZE);
    assert_memory_equal(wide + TOKEN_CACHE_KEY_SIZE, canary, sizeof(canary));
}

static void test_hit_returns_the_stored_claims(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, NULL);
    unsigned char k1[TOKEN_CACHE_KEY_SIZE], k2[TOKEN_CACHE_KEY_SIZE], k3[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims typical, extreme, odd;
    char longest[JWT_STR_MAX + 1];

    assert_non_null(tc);
    assert_int_equal(token_cache_capacity(tc), 100);
    assert_int_equal(token_cache_size(tc), 0);

    claims_for(4, &typical); /* has_nbf, jti_derived false */
    key_of("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl", k1);
    token_cache_put(tc, k1, &typical, typical.exp + 30, 0);
    assert_int_equal(token_cache_size(tc), 1);
    expect_hit(tc, k1, NOW, &typical);
    /* A hit is not consumed. */
    expect_hit(tc, k1, NOW, &typical);

    /* Every flag the other way, the longest strings, empty ones, and times
     * at both ends of int64: all must come back exactly. */
    memset(longest, 'x', JWT_STR_MAX);
    longest[JWT_STR_MAX] = '\0';
    memset(&extreme, 0, sizeof(extreme));
    set_str(extreme.jti, longest);
    set_str(extreme.sub, "");
    set_str(extreme.iss, longest);
    extreme.has_sub = false;
    extreme.has_iss = true;
    extreme.jti_derived = true;
    extreme.has_nbf = true;
    extreme.exp = INT64_MAX;
    extreme.iat = INT64_MIN;
    extreme.nbf = -1;
    key_of("extreme", k2);
    token_cache_put(tc, k2, &extreme, INT64_MAX, 0);
    expect_hit(tc, k2, INT64_MAX, &extreme);

    /* An nbf without has_nbf, and until far before exp, still round-trip. */
    memset(&odd, 0, sizeof(odd));
    set_str(odd.jti, JWT_DERIVED_PREFIX "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    set_str(odd.sub, "s");
    set_str(odd.iss, "");
    odd.has_sub = true;
    odd.jti_derived = true;
    odd.exp = INT64_MIN;
    odd.iat = INT64_MAX;
    odd.nbf = INT64_MIN;
    key_of("odd", k3);
    token_cache_put(tc, k3, &odd, INT64_MIN + 5, 0);
    expect_hit(tc, k3, INT64_MIN, &odd);

    assert_int_equal(token_cache_size(tc), 3);
    expect_hit(tc, k1, NOW, &typical);
    token_cache_free(tc);
}

/* The common iss is kept once, and every entry, whether it carries that iss,
 * another or none, comes back exactly. */
static void test_common_issuer_round_trips(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, "https://issuer-3.example.com/");
    unsigned char key[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims c;
    char name[16];

    assert_non_null(tc);
    for (unsigned i = 0; i < 28; i++) { /* four of each of the seven issuers */
        claims_for(i, &c);
        snprintf(name, sizeof(name), "t%u", i);
        key_of(name, key);
        token_cache_put(tc, key, &c, c.exp + 30, 0);
    }
    for (unsigned i = 0; i < 28; i++) {
        claims_for(i, &c);
        snprintf(name, sizeof(name), "t%u", i);
        key_of(name, key);
        expect_hit(tc, key, NOW, &c);
    }
    token_cache_free(tc);
}

static void test_other_tokens_miss(void **state)
{
    (void)state;
    static const char token[] = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJhIn0.c2lnbmF0dXJlLWJ5dGVz";
    struct token_cache *tc = token_cache_new(1000, NULL);
    unsigned char key[TOKEN_CACHE_KEY_SIZE], other[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims c;
    char altered[sizeof(token)];

    assert_non_null(tc);
    claims_for(1, &c);
    key_of(token, key);
    token_cache_put(tc, key, &c, LATER, 0);
    expect_hit(tc, key, NOW, &c);

    /* The same token with any one byte changed (a forged signature, an
     * edited payload), cut short or extended: all miss. */
    for (size_t i = 0; i < strlen(token); i++) {
        memcpy(altered, token, sizeof(token));
        altered[i] ^= 1;
        key_of(altered, other);
        assert_false(hits(tc, other, NOW));
    }
    token_cache_key(token, strlen(token) - 1, other);
    assert_false(hits(tc, other, NOW));
    token_cache_key(token, strlen(token) + 1, other); /* with its NUL */
    assert_false(hits(tc, other, NOW));
    key_of("some other token", other);
    assert_false(hits(tc, other, NOW));

    /* Misses neither add nor remove anything. */
    assert_int_equal(token_cache_size(tc), 1);
    expect_hit(tc, key, NOW, &c);
    token_cache_free(tc);
}

static void test_expired_entry_is_dropped(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, NULL);
    unsigned char k1[TOKEN_CACHE_KEY_SIZE], k2[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims c1, c2;

    assert_non_null(tc);
    claims_for(1, &c1);
    claims_for(2, &c2);
    key_of("token-1", k1);
    key_of("token-2", k2);
    token_cache_put(tc, k1, &c1, NOW, 0);
    token_cache_put(tc, k2, &c2, NOW + 10, 0);
    assert_int_equal(token_cache_size(tc), 2);

    /* until itself is still good; one second later it is gone for good. */
    expect_hit(tc, k1, NOW - 100, &c1);
    expect_hit(tc, k1, NOW, &c1);
    assert_false(hits(tc, k1, NOW + 1));
    assert_int_equal(token_cache_size(tc), 1);
    assert_false(hits(tc, k1, NOW - 100));
    assert_int_equal(token_cache_size(tc), 1);

    /* The other entry is untouched, and goes the same way. */
    expect_hit(tc, k2, NOW + 1, &c2);
    assert_false(hits(tc, k2, NOW + 11));
    assert_int_equal(token_cache_size(tc), 0);

    /* A token put again after expiry is cached afresh. */
    token_cache_put(tc, k1, &c1, LATER, 0);
    expect_hit(tc, k1, NOW + 1, &c1);
    assert_int_equal(token_cache_size(tc), 1);
    token_cache_free(tc);
}

static void test_put_replaces_same_key(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, NULL);
    unsigned char key[TOKEN_CACHE_KEY_SIZE], other[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims a, b, big;

    assert_non_null(tc);
    claims_for(10, &a);
    claims_for(11, &b);
    key_of("token", key);
    key_of("other", other);
    token_cache_put(tc, key, &a, LATER, 0);
    token_cache_put(tc, other, &a, LATER, 0);
    token_cache_put(tc, key, &b, LATER, 0);
    assert_int_equal(token_cache_size(tc), 2);
    expect_hit(tc, key, NOW, &b);
    expect_hit(tc, other, NOW, &a);

    /* A replacement of another size, then one that has already expired. */
    memset(&big, 0, sizeof(big));
    memset(big.jti, 'j', JWT_STR_MAX);
    memset(big.sub, 's', JWT_STR_MAX);
    memset(big.iss, 'i', JWT_STR_MAX);
    big.exp = LATER;
    token_cache_put(tc, key, &big, LATER, 0);
    assert_int_equal(token_cache_size(tc), 2);
    expect_hit(tc, key, NOW, &big);
    token_cache_put(tc, key, &a, NOW - 1, 0);
    assert_int_equal(token_cache_size(tc), 2);
    assert_false(hits(tc, key, NOW));
    assert_int_equal(token_cache_size(tc), 1);
    expect_hit(tc, other, NOW, &a);
    token_cache_free(tc);
}

/* Keys and claims for tokens "token-<i>", i < KEYS. */
#define KEYS 12000
static struct {
    unsigned char key[KEYS][TOKEN_CACHE_KEY_SIZE];
} tk;

static int group_setup(void **state)
{
    (void)state;
    char token[32];

    for (unsigned i = 0; i < KEYS; i++) {
        snprintf(token, sizeof(token), "token-%u", i);
        key_of(token, tk.key[i]);
    }
    return 0;
}

static void test_full_cache_evicts_oldest(void **state)
{
    (void)state;
    /* Under 32 entries the cache is one shard (see token_cache.c), so the
     * FIFO order is the whole cache's. */
    struct token_cache *tc = token_cache_new(16, NULL);
    struct jwt_claims c;

    assert_non_null(tc);
    for (unsigned i = 0; i < 16; i++) {
        claims_for(i, &c);
        token_cache_put(tc, tk.key[i], &c, LATER, 0);
    }
    assert_int_equal(token_cache_size(tc), 16);
    for (unsigned i = 0; i < 16; i++) {
        claims_for(i, &c);
        expect_hit(tc, tk.key[i], NOW, &c);
    }

    /* The 17th pushes out the first in, whatever was read since: FIFO, not
     * LRU (0 was read last, above, and still goes first). */
    claims_for(16, &c);
    token_cache_put(tc, tk.key[16], &c, LATER, 0);
    assert_int_equal(token_cache_size(tc), 16);
    assert_false(hits(tc, tk.key[0], NOW));
    for (unsigned i = 1; i <= 16; i++)
        assert_true(hits(tc, tk.key[i], NOW));
    claims_for(17, &c);
    token_cache_put(tc, tk.key[17], &c, LATER, 0);
    assert_false(hits(tc, tk.key[1], NOW));
    assert_true(hits(tc, tk.key[2], NOW));
    assert_int_equal(token_cache_size(tc), 16);

    /* Replacing an entry evicts nothing. */
    claims_for(2, &c);
    token_cache_put(tc, tk.key[2], &c, LATER, 0);
    assert_int_equal(token_cache_size(tc), 16);
    for (unsigned i = 2; i <= 17; i++)
        assert_true(hits(tc, tk.key[i], NOW));

    /* The oldest (2) expired and dropped: the next put takes its place and
     * evicts nobody. */
    token_cache_put(tc, tk.key[2], &c, NOW - 1, 0);
    assert_false(hits(tc, tk.key[2], NOW));
    assert_int_equal(token_cache_size(tc), 15);
    claims_for(18, &c);
    token_cache_put(tc, tk.key[18], &c, LATER, 0);
    assert_int_equal(token_cache_size(tc), 16);
    for (unsigned i = 3; i <= 18; i++)
        assert_true(hits(tc, tk.key[i], NOW));

    /* One dropped from the middle: the cache stays within capacity and
     * every entry it keeps is a recent one. */
    token_cache_put(tc, tk.key[10], &c, NOW - 1, 0);
    assert_false(hits(tc, tk.key[10], NOW));
    for (unsigned i = 19; i < 60; i++) {
        claims_for(i, &c);
        token_cache_put(tc, tk.key[i], &c, LATER, 0);
        assert_true(token_cache_size(tc) <= 16);
        expect_hit(tc, tk.key[i], NOW, &c);
    }
    assert_int_equal(token_cache_size(tc), 16);
    for (unsigned i = 44; i < 60; i++)
        assert_true(hits(tc, tk.key[i], NOW));
    token_cache_free(tc);
}

/* Puts n distinct tokens into a cache of capacity cap, checking the bound
 * after every put; then it must be exactly full, hold the newest token, and
 * every token that hits must return its own claims. */
static void fill_beyond(size_t cap, unsigned n)
{
    struct token_cache *tc = token_cache_new(cap, NULL);
    struct jwt_claims c, out;
    size_t found = 0;

    assert_non_null(tc);
    assert_int_equal(token_cache_capacity(tc), cap);
    for (unsigned i = 0; i < n; i++) {
        claims_for(i, &c);
        token_cache_put(tc, tk.key[i], &c, LATER, 0);
        assert_true(token_cache_size(tc) <= cap);
    }
    assert_int_equal(token_cache_size(tc), cap);
    claims_for(n - 1, &c);
    expect_hit(tc, tk.key[n - 1], NOW, &c);
    assert_false(hits(tc, tk.key[0], NOW));
    for (unsigned i = 0; i < n; i++) {
        if (token_cache_get(tc, tk.key[i], NOW, &out)) {
            claims_for(i, &c);
            assert_true(same_claims(&out, &c));
            found++;
        }
    }
    assert_int_equal(found, cap);
    token_cache_free(tc);
}

static void test_capacity_is_never_exceeded(void **state)
{
    (void)state;
    /* One shard, a few, exactly 64, more with an uneven split, and 64
     * shards (from 1024 up): 10000 gets 12000 tokens, 20% past capacity. */
    static const size_t caps[] = {1, 2, 5, 31, 33, 63, 64, 65, 100, 1023, 10000};

    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        fill_beyond(caps[i], (unsigned)(10 * caps[i] < KEYS ? 10 * caps[i] : KEYS));
}

/* A cache of capacity C holds any C tokens: the shards share the capacity
 * rather than splitting it exactly, so one that gets more than its share
 * keeps them while the cache has room. (Split exactly, this cache would
 * keep only ~9,640 of these 10,000.) 10,000 spreads over 64 shards with a
 * share of 156-157 and rings of 195-197; with these keys the fullest shard
 * gets 193. */
static void test_full_cache_holds_capacity_tokens(void **state)
{
    (void)state;
    enum { C = 10000 };
    struct token_cache *tc = token_cache_new(C, NULL);
    struct jwt_claims c;

    assert_non_null(tc);
    for (unsigned i = 0; i < C; i++) {
        claims_for(i, &c);
        token_cache_put(tc, tk.key[i], &c, LATER, 0);
        /* Nothing is evicted on the way: every put adds one. */
        assert_int_equal(token_cache_size(tc), i + 1);
    }
    for (unsigned i = 0; i < C; i++) {
        claims_for(i, &c);
        expect_hit(tc, tk.key[i], NOW, &c);
    }
    assert_int_equal(token_cache_size(tc), C);

    /* Full now: one more evicts one, and the count stays. */
    claims_for(C, &c);
    token_cache_put(tc, tk.key[C], &c, LATER, 0);
    assert_int_equal(token_cache_size(tc), C);
    expect_hit(tc, tk.key[C], NOW, &c);
    token_cache_free(tc);
}

/* The shard of key in a cache of 64 shards, as token_cache.c picks it:
 * scale(key_bits(key, 0), 64), the top 6 bits of the key's first byte. */
static unsigned shard64(const unsigned char *key)
{
    return key[0] >> 2;
}

/* A full cache evicts within the shard the new token falls in; a shard
 * with nothing to evict (the others holding the whole capacity) caches
 * nothing, and counts nothing, until the cache has room again. */
static void test_full_cache_empty_shard_caches_nothing(void **state)
{
    (void)state;
    /* 64 shards with a share of 16 and rings of 20: 63 of them can hold
     * the whole 1024. */
    struct token_cache *tc = token_cache_new(1024, NULL);
    struct jwt_claims c;
    unsigned i, put = 0, outsider = KEYS, dropped = KEYS;

    assert_non_null(tc);
    for (i = 0; i < KEYS && token_cache_size(tc) < 1024; i++) {
        if (shard64(tk.key[i]) == 0) {
            if (outsider == KEYS)
                outsider = i;
            continue;
        }
        claims_for(i, &c);
        token_cache_put(tc, tk.key[i], &c, LATER, 0);
        dropped = i;
        put++;
    }
    assert_int_equal(token_cache_size(tc), 1024);
    assert_true(put > 1024); /* some shards filled their rings on the way */
    assert_true(outsider < KEYS);

    /* Shard 0 holds nothing to evict: the token is not cached. */
    claims_for(outsider, &c);
    token_cache_put(tc, tk.key[outsider], &c, LATER, 0);
    assert_false(hits(tc, tk.key[outsider], NOW));
    assert_int_equal(token_cache_size(tc), 1024);

    /* One entry elsewhere expires and is dropped: now there is room. */
    claims_for(dropped, &c);
    token_cache_put(tc, tk.key[dropped], &c, NOW - 1, 0);
    assert_false(hits(tc, tk.key[dropped], NOW));
    assert_int_equal(token_cache_size(tc), 1023);
    claims_for(outsider, &c);
    token_cache_put(tc, tk.key[outsider], &c, LATER, 0);
    expect_hit(tc, tk.key[outsider], NOW, &c);
    assert_int_equal(token_cache_size(tc), 1024);
    token_cache_free(tc);
}

static void test_capacity_zero_disables(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(0, NULL);
    struct jwt_claims c;

    assert_non_null(tc);
    claims_for(1, &c);
    token_cache_put(tc, tk.key[1], &c, LATER, 0);
    token_cache_put(tc, tk.key[1], &c, LATER, 0);
    assert_false(hits(tc, tk.key[1], NOW));
    assert_int_equal(token_cache_size(tc), 0);
    assert_int_equal(token_cache_capacity(tc), 0);
    token_cache_free(tc);
    token_cache_free(NULL);
}

static void test_unterminated_strings_not_cached(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, NULL);
    struct jwt_claims c, bad;

    assert_non_null(tc);
    claims_for(1, &c);
    /* Each string in turn fills its whole array with no NUL. */
    for (int field = 0; field < 3; field++) {
        bad = c;
        char *s = field == 0 ? bad.jti : field == 1 ? bad.sub : bad.iss;
        memset(s, 'a', JWT_STR_MAX + 1);
        token_cache_put(tc, tk.key[field], &bad, LATER, 0);
        assert_false(hits(tc, tk.key[field], NOW));
        assert_int_equal(token_cache_size(tc), 0);
    }
    /* Nor does a bad put disturb an entry already there. */
    token_cache_put(tc, tk.key[5], &c, LATER, 0);
    bad = c;
    memset(bad.sub, 'a', JWT_STR_MAX + 1);
    token_cache_put(tc, tk.key[5], &bad, LATER, 0);
    expect_hit(tc, tk.key[5], NOW, &c);
    token_cache_free(tc);
}

/* ---- threads ----------------------------------------------------------- */

#define T_THREADS 4
#define T_OPS 20000
#define T_KEYS 1024
#define T_CAP 256

/* Every token's claims, so that threads compare without building them. */
static struct jwt_claims t_claims[T_KEYS];

struct worker {
    pthread_t thread;
    struct token_cache *tc;
    unsigned seed;
    long hits, puts, errors; /* counted: cmocka must not fail off the main thread */
};

/* One token in eight is put already expired, so gets drop entries while
 * other threads put and evict in the same shards. */
static int64_t t_until(unsigned i)
{
    return i % 8 == 0 ? NOW - 1 : LATER;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct jwt_claims out;

    for (long j = 0; j < T_OPS; j++) {
        w->seed = w->seed * 1103515245u + 12345u;
        unsigned i = (w->seed >> 8) % T_KEYS;
        if (token_cache_get(w->tc, tk.key[i], NOW, &out)) {
            w->hits++;
            if (i % 8 == 0 || !same_claims(&out, &t_claims[i]))
                w->errors++;
        } else {
            token_cache_put(w->tc, tk.key[i], &t_claims[i], t_until(i), 0);
            w->puts++;
        }
        if (j % 1000 == 0 && token_cache_size(w->tc) > T_CAP)
            w->errors++;
    }
    return NULL;
}

/* A clear forgets everything, and a put of a token verified before the
 * clear (an older generation) is dropped: its key may be gone. */
static void test_clear_and_generation(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(100, NULL);
    unsigned char k1[TOKEN_CACHE_KEY_SIZE], k2[TOKEN_CACHE_KEY_SIZE];
    struct jwt_claims c1, c2;

    assert_non_null(tc);
    claims_for(1, &c1);
    claims_for(2, &c2);
    key_of("one", k1);
    key_of("two", k2);
    uint64_t before = token_cache_generation(tc);
    token_cache_put(tc, k1, &c1, LATER, before);
    expect_hit(tc, k1, NOW, &c1);
    token_cache_clear(tc);
    assert_int_equal(token_cache_size(tc), 0);
    assert_false(hits(tc, k1, NOW));
    assert_true(token_cache_generation(tc) != before);
    token_cache_put(tc, k2, &c2, LATER, before);
    assert_false(hits(tc, k2, NOW));
    assert_int_equal(token_cache_size(tc), 0);
    token_cache_put(tc, k2, &c2, LATER, token_cache_generation(tc));
    expect_hit(tc, k2, NOW, &c2);
    /* A cleared cache fills again to its capacity. */
    for (unsigned i = 0; i < 150; i++)
        token_cache_put(tc, tk.key[i], &c1, LATER, token_cache_generation(tc));
    assert_int_equal(token_cache_size(tc), 100);
    token_cache_free(tc);
}

static void test_threads(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(T_CAP, NULL);
    struct worker w[T_THREADS];
    struct jwt_claims out;
    long total_hits = 0;
    size_t found = 0;

    assert_non_null(tc);
    for (unsigned i = 0; i < T_KEYS; i++)
        claims_for(i, &t_claims[i]);
    for (int t = 0; t < T_THREADS; t++) {
        w[t] = (struct worker){.tc = tc, .seed = 7919u * (unsigned)t + 1};
        assert_int_equal(pthread_create(&w[t].thread, NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < T_THREADS; t++) {
        assert_int_equal(pthread_join(w[t].thread, NULL), 0);
        assert_int_equal(w[t].errors, 0);
        assert_int_equal(w[t].hits + w[t].puts, T_OPS);
        total_hits += w[t].hits;
    }
    /* 1024 tokens over 256 places: some must have hit, many missed. */
    assert_true(total_hits > 0);
    assert_true(total_hits < T_THREADS * T_OPS);
    assert_true(token_cache_size(tc) <= T_CAP);

    /* What is left is consistent: expired tokens miss (and are dropped),
     * every hit is its token's own claims, and the hits are the size. */
    for (unsigned i = 0; i < T_KEYS; i++) {
        if (token_cache_get(tc, tk.key[i], NOW, &out)) {
            assert_true(i % 8 != 0);
            assert_true(same_claims(&out, &t_claims[i]));
            found++;
        }
    }
    assert_int_equal(found, token_cache_size(tc));
    assert_true(found > 0);
    token_cache_free(tc);
}

/* Threads putting distinct tokens at once into a cache far smaller than
 * them: the count never passes the capacity, not even for a moment, and
 * ends exactly at it, every entry its own token's. */
#define F_THREADS 4
#define F_PER_THREAD 20000
#define F_CAP 5000

static unsigned char f_key[F_THREADS * F_PER_THREAD][TOKEN_CACHE_KEY_SIZE];

struct filler {
    pthread_t thread;
    struct token_cache *tc;
    unsigned first;
    long over; /* puts after which the size was above F_CAP */
};

static void *fill(void *arg)
{
    struct filler *f = arg;
    struct jwt_claims c;
    char token[32];

    for (unsigned i = f->first; i < f->first + F_PER_THREAD; i++) {
        snprintf(token, sizeof(token), "filler-%u", i);
        key_of(token, f_key[i]);
        claims_for(i, &c);
        token_cache_put(f->tc, f_key[i], &c, LATER, 0);
        if (token_cache_size(f->tc) > F_CAP)
            f->over++;
    }
    return NULL;
}

static void test_threads_fill_to_capacity(void **state)
{
    (void)state;
    struct token_cache *tc = token_cache_new(F_CAP, NULL);
    struct filler f[F_THREADS];
    struct jwt_claims c, out;
    size_t found = 0;

    assert_non_null(tc);
    for (unsigned t = 0; t < F_THREADS; t++) {
        f[t] = (struct filler){.tc = tc, .first = t * F_PER_THREAD};
        assert_int_equal(pthread_create(&f[t].thread, NULL, fill, &f[t]), 0);
    }
    for (unsigned t = 0; t < F_THREADS; t++) {
        assert_int_equal(pthread_join(f[t].thread, NULL), 0);
        assert_int_equal(f[t].over, 0);
    }
    assert_true(token_cache_size(tc) <= F_CAP);
    /* Every shard had entries to evict, so nothing went uncached for want
     * of room: the cache is exactly full. */
    assert_int_equal(token_cache_size(tc), F_CAP);

    /* And the count is the truth: as many tokens hit, each with its own
     * claims. */
    for (unsigned i = 0; i < F_THREADS * F_PER_THREAD; i++) {
        if (token_cache_get(tc, f_key[i], NOW, &out)) {
            claims_for(i, &c);
            assert_true(same_claims(&out, &c));
            found++;
        }
    }
    assert_int_equal(found, F_CAP);
    token_cache_free(tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_is_sha256_prefix_of_the_bytes),
        cmocka_unit_test(test_hit_returns_the_stored_claims),
        cmocka_unit_test(test_common_issuer_round_trips),
        cmocka_unit_test(test_other_tokens_miss),
        cmocka_unit_test(test_expired_entry_is_dropped),
        cmocka_unit_test(test_put_replaces_same_key),
        cmocka_unit_test(test_full_cache_evicts_oldest),
        cmocka_unit_test(test_capacity_is_never_exceeded),
        cmocka_unit_test(test_full_cache_holds_capacity_tokens),
        cmocka_unit_test(test_full_cache_empty_shard_caches_nothing),
        cmocka_unit_test(test_capacity_zero_disables),
        cmocka_unit_test(test_unterminated_strings_not_cached),
        cmocka_unit_test(test_clear_and_generation),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_threads_fill_to_capacity),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
