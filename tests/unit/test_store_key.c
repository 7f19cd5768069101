/* test_store_key.c - Redis key names: fixed length, hashed client text,
 * issuers kept apart, and the prefix rule. The expected names are computed
 * here from the documented layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "revokd/b64url.h"
#include "revokd/store_key.h"

#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* <prefix><kind><base64url of SHA-256(be32 len(iss) || iss || id)[0..15)>,
 * computed with OpenSSL's one-shot SHA256 rather than revokd's helper. */
static void expected_key(char *out, size_t size, const char *prefix, char kind, const char *iss,
                         const char *id)
{
    unsigned char input[4 + 2 * STORE_KEY_ID_MAX], name[32];
    char enc[B64URL_ENCODED_SIZE(15)];
    size_t il = strlen(iss), dl = strlen(id);

    input[0] = (unsigned char)(il >> 24);
    input[1] = (unsigned char)(il >> 16);
    input[2] = (unsigned char)(il >> 8);
    input[3] = (unsigned char)il;
    memcpy(input + 4, iss, il);
    memcpy(input + 4 + il, id, dl);
    SHA256(input, 4 + il + dl, name);
    b64url_encode(name, 15, enc);
    snprintf(out, size, "%s%c%s", prefix, kind, enc);
}

static void test_layout_matches_contract(void **state)
{
    (void)state;
    char key[STORE_KEY_SIZE], want[STORE_KEY_SIZE + 16];

    size_t n = store_key(key, "revokd:", STORE_KEY_JTI, "https://issuer.example", "id-1");
    expected_key(want, sizeof(want), "revokd:", 'j', "https://issuer.example", "id-1");
    assert_string_equal(key, want);
    assert_int_equal(n, strlen(key));
    assert_int_equal(n, 7 + 1 + 20); /* 28 bytes: Redis's 32-byte allocation class */

    store_key(key, "revokd:", STORE_KEY_SUB, "https://issuer.example", "user-1");
    expected_key(want, sizeof(want), "revokd:", 's', "https://issuer.example", "user-1");
    assert_string_equal(key, want);

    /* The empty namespace, spelled out byte by byte: be32 0, then "x". */
    store_key(key, "p:", STORE_KEY_JTI, "", "x");
    expected_key(want, sizeof(want), "p:", 'j', "", "x");
    assert_string_equal(key, want);
    unsigned char digest[32];
    SHA256((const unsigned char *)"\0\0\0\0x", 5, digest);
    char enc[B64URL_ENCODED_SIZE(15)];
    b64url_encode(digest, 15, enc);
    assert_memory_equal(key, "p:j", 3);
    assert_string_equal(key + 3, enc);
}

static void test_fixed_length(void **state)
{
    (void)state;
    char key[STORE_KEY_SIZE], iss[STORE_KEY_ID_MAX + 1], id[STORE_KEY_ID_MAX + 1];
    static const size_t lens[] = {0, 1, 2, 31, 32, 255, STORE_KEY_ID_MAX};

    for (size_t a = 0; a < sizeof(lens) / sizeof(lens[0]); a++) {
        for (size_t b = 0; b < sizeof(lens) / sizeof(lens[0]); b++) {
            memset(iss, 'i', lens[a]);
            iss[lens[a]] = '\0';
            memset(id, ':', lens[b]); /* separators in the input change nothing */
            id[lens[b]] = '\0';
            size_t n = store_key(key, "revokd:", STORE_KEY_JTI, iss, id);
            assert_int_equal(n, 28);
            assert_int_equal(strlen(key), 28);
            assert_int_equal(strspn(key + 8, B64), 20);
        }
    }
    /* Binary and non-ASCII text too. */
    assert_int_equal(store_key(key, "revokd:", STORE_KEY_SUB, "\xff\x01", "\n\r \t\"*"), 28);
    assert_int_equal(strspn(key + 8, B64), 20);
}

static void test_issuers_kept_apart(void **state)
{
    (void)state;
    char a[STORE_KEY_SIZE], b[STORE_KEY_SIZE];

    store_key(a, "revokd:", STORE_KEY_JTI, "https://a.example", "same-jti");
    store_key(b, "revokd:", STORE_KEY_JTI, "https://b.example", "same-jti");
    assert_string_not_equal(a, b);

    store_key(a, "revokd:", STORE_KEY_JTI, "", "same-jti");
    store_key(b, "revokd:", STORE_KEY_JTI, "x", "same-jti");
    assert_string_not_equal(a, b);

    store_key(a, "revokd:", STORE_KEY_JTI, "https://a.example", "jti-1");
    store_key(b, "revokd:", STORE_KEY_JTI, "https://a.example", "jti-2");
    assert_string_not_equal(a, b);

    /* Deterministic. */
    store_key(b, "revokd:", STORE_KEY_JTI, "https://a.example", "jti-1");
    assert_string_equal(a, b);
}

static void test_boundary_ambiguity(void **state)
{
    (void)state;
    char a[STORE_KEY_SIZE], b[STORE_KEY_SIZE];

    store_key(a, "revokd:", STORE_KEY_JTI, "ab", "c");
    store_key(b, "revokd:", STORE_KEY_JTI, "a", "bc");
    assert_string_not_equal(a, b);
    store_key(a, "revokd:", STORE_KEY_JTI, "", "abc");
    store_key(b, "revokd:", STORE_KEY_JTI, "abc", "");
    assert_string_not_equal(a, b);
}

static void test_kinds_differ(void **state)
{
    (void)state;
    char j[STORE_KEY_SIZE], s[STORE_KEY_SIZE];

    store_key(j, "revokd:", STORE_KEY_JTI, "iss", "x");
    store_key(s, "revokd:", STORE_KEY_SUB, "iss", "x");
    assert_memory_equal(j, "revokd:j", 8);
    assert_memory_equal(s, "revokd:s", 8);
    assert_string_equal(j + 8, s + 8); /* only the kind letter differs */
}

static void test_prefix_kept(void **state)
{
    (void)state;
    char key[STORE_KEY_SIZE], prefix[STORE_KEY_PREFIX_MAX + 1];

    assert_int_equal(store_key(key, "tenant-7/revokd:", STORE_KEY_JTI, "i", "x"), 16 + 21);
    assert_memory_equal(key, "tenant-7/revokd:j", 17);
    assert_int_equal(store_key(key, "x", STORE_KEY_SUB, "i", "x"), 1 + 21);
    assert_memory_equal(key, "xs", 2);

    memset(prefix, 'P', STORE_KEY_PREFIX_MAX);
    prefix[STORE_KEY_PREFIX_MAX] = '\0';
    size_t n = store_key(key, prefix, STORE_KEY_JTI, "i", "x");
    assert_int_equal(n, STORE_KEY_SIZE - 1);
    assert_int_equal(strlen(key), STORE_KEY_SIZE - 1);
    assert_memory_equal(key, prefix, STORE_KEY_PREFIX_MAX);
    assert_int_equal(key[STORE_KEY_PREFIX_MAX], 'j');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_matches_contract),
        cmocka_unit_test(test_fixed_length),
        cmocka_unit_test(test_issuers_kept_apart),
        cmocka_unit_test(test_boundary_ambiguity),
        cmocka_unit_test(test_kinds_differ),
        cmocka_unit_test(test_prefix_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
